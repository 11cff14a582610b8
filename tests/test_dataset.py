from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotate.dataset import import_export, labeled_from_export, load_labels, read_export, read_label_file
from annotate.errors import InputError, SchemaError

from .conftest import FIXTURES, STARTER, starter_folder


@pytest.fixture
def export() -> list[dict]:
    return read_export(FIXTURES / "ls_export.json")


def test_export_becomes_rows_with_decisions(export: list[dict]) -> None:
    rows, counts = labeled_from_export(export)
    by_id = {row.sentence_id: row for row in rows}
    assert sorted(by_id) == ["a1-s1", "a1-s2", "a1-s3", "a1-s6"]
    assert by_id["a1-s1"].labels == ["financing"] and by_id["a1-s1"].decision == "unanimous"
    # 1 vs 1 on commercialization: the later annotation (user 2, without it) wins the tie.
    assert by_id["a1-s2"].labels == ["regulatory_barrier"] and by_id["a1-s2"].decision == "tie"
    assert by_id["a1-s3"].labels == ["safety_risk"] and by_id["a1-s3"].decision == "majority"
    assert by_id["a1-s6"].labels == [] and by_id["a1-s6"].decision == "single"
    assert [a.annotator for a in by_id["a1-s3"].annotations] == ["user:1", "user:2", "user:3"]
    assert counts["skipped_cancelled"] == 1 and counts["without_annotations"] == 2
    assert counts["ties"] == 1 and counts["disagreements"] == 2


def test_json_min_single_choice_is_a_string_and_several_a_dict() -> None:
    rows, _ = labeled_from_export(
        [
            {"id": 1, "text": "Funding fell.", "sentence_id": "s1", "labels": "financing", "annotator": "a@x.org", "annotation_id": 1},
            {"id": 2, "text": "Rules bite.", "sentence_id": "s2", "labels": {"choices": ["regulatory_barrier", "commercialization"]}, "annotator": "a@x.org", "annotation_id": 2},
        ]
    )
    assert [row.labels for row in rows] == [["financing"], ["regulatory_barrier", "commercialization"]]


def test_a_blank_task_without_annotations_is_left_out_but_with_annotations_refused() -> None:
    vote = {"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["financing"]}}]}
    tasks = [
        {"id": 1, "data": {"text": "Funding fell.", "sentence_id": "s1"}, "annotations": [vote]},
        {"id": 2, "data": {"text": "  ", "sentence_id": "s2"}, "annotations": []},
        {"id": 3, "data": {"title": "no text"}, "annotations": []},
    ]
    rows, counts = labeled_from_export(tasks)
    assert [row.sentence_id for row in rows] == ["s1"] and counts["without_annotations"] == 2
    with pytest.raises(InputError, match=r"task #2 \(id 2\): task has no 'text' in its data"):
        labeled_from_export([tasks[0], {**tasks[1], "annotations": [vote]}])


def test_ground_truth_annotation_wins() -> None:
    task = {"id": 1, "data": {"text": "x y", "sentence_id": "s"}, "annotations": [
        {"completed_by": 1, "result": [{"type": "choices", "value": {"choices": ["financing"]}}], "ground_truth": True, "updated_at": "1"},
        {"completed_by": 2, "result": [], "updated_at": "2"},
        {"completed_by": 3, "result": [], "updated_at": "3"},
    ]}
    (row,), _ = labeled_from_export([task])
    assert row.labels == ["financing"] and row.decision == "ground_truth"


def test_unknown_label_names_the_task(export: list[dict]) -> None:
    export[2]["annotations"][0]["result"][0]["value"]["choices"] = ["funding"]
    with pytest.raises(InputError) as error:
        labeled_from_export(export, origin="export.json")
    assert str(error.value) == "export.json: task #3 (id 102): unknown label 'funding' (expected one of regulatory_barrier, financing, safety_risk, commercialization)"


def test_import_versions_only_on_change(tmp_path: Path, export: list[dict]) -> None:
    first = import_export(export, labels_dir=tmp_path, name="studio", origin="e1.json")
    assert (first.version, first.changed, first.new, first.rows) == (1, True, 4, 4)
    again = import_export(export, labels_dir=tmp_path, name="studio", origin="e1.json")
    assert (again.version, again.changed, again.file) == (1, False, None)
    export[5]["annotations"][0]["result"] = [{"type": "choices", "value": {"choices": ["commercialization"]}}]
    export[4]["annotations"] = [{"completed_by": 1, "result": [], "updated_at": "9"}]
    changed = import_export(export, labels_dir=tmp_path, name="studio", origin="e2.json")
    assert (changed.version, changed.new, changed.updated, changed.removed) == (2, 1, 1, 0)
    assert (tmp_path / "studio-v1.jsonl").exists() and (tmp_path / "studio-v2.jsonl").exists()
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert [v["origin"] for v in manifest["sets"]["studio"]] == ["e1.json", "e2.json"]


def test_load_labels_merges_newest_versions(tmp_path: Path, export: list[dict]) -> None:
    starter_folder(tmp_path)
    starter = len(read_label_file(tmp_path / STARTER.name))
    import_export(export, labels_dir=tmp_path, name="studio")
    assert len(load_labels(tmp_path)) == starter + 4


def test_read_label_file_refuses_duplicates_and_unknown_fields(tmp_path: Path) -> None:
    good = (STARTER).read_text(encoding="utf-8").splitlines()[0]
    duplicate = tmp_path / "dup.jsonl"
    duplicate.write_text(good + "\n" + good + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"dup.jsonl:2: duplicate sentence_id"):
        read_label_file(duplicate)
    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({**json.loads(good), "funding": 1}) + "\n", encoding="utf-8")
    with pytest.raises(SchemaError, match=r"unknown.jsonl:1: funding: Extra inputs are not permitted"):
        read_label_file(unknown)


def test_starter_set_meets_its_brief() -> None:
    rows = read_label_file(STARTER)
    assert len(rows) >= 1500
    assert sum(r.lang == "en" for r in rows) >= 1100 and sum(r.lang == "zh" for r in rows) >= 400
    for label in ("regulatory_barrier", "financing", "safety_risk", "commercialization"):
        assert sum(getattr(r, label) for r in rows) >= 200
    assert sum(not r.labels for r in rows) >= 0.15 * len(rows)
    assert sum(len(r.labels) >= 2 for r in rows) >= 150
    # Every sentence was labelled by its writer and two blind reviewers (labels/README.md).
    assert all(len({a.annotator for a in r.annotations}) == 3 for r in rows)
    assert {r.decision for r in rows} <= {"unanimous", "majority"}

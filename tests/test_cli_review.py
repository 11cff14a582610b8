from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotate.cli import cli, read_sentences
from annotate.dataset import write_label_set
from annotate.schemas import AnnotatorChoice

from .conftest import starter_articles, starter_rows


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A label set (half the starter articles) where one plain financing sentence lost its label,
    and only three sentences carry two annotators' votes (the rest keep their first annotator's)."""
    rows = starter_articles(2, start=1)
    target = next(r for r in rows if r.labels == ["financing"] and "Series" in r.text and "million" in r.text)
    votes = {
        0: [AnnotatorChoice(annotator="ann", labels=["financing"]), AnnotatorChoice(annotator="bob", labels=["financing"])],
        1: [AnnotatorChoice(annotator="ann", labels=[]), AnnotatorChoice(annotator="bob", labels=["financing"])],
        2: [AnnotatorChoice(annotator="ann", labels=[]), AnnotatorChoice(annotator="bob", labels=[])],
    }
    edited = []
    for position, row in enumerate(rows):
        update: dict[str, object] = {"annotations": votes.get(position, row.annotations[:1])}
        if row.sentence_id == target.sentence_id:
            update["financing"] = 0
        edited.append(row.model_copy(update=update))
    folder = tmp_path_factory.mktemp("labels")
    write_label_set(edited, labels_dir=folder, name="planted", origin="test")
    return folder, target.sentence_id


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_review_lists_the_planted_wrong_label(planted: tuple[Path, str]) -> None:
    folder, wrong_id = planted
    result = invoke("review", "--labels", str(folder), "-n", "1000")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "agreement over 3 sentences labelled by two or more of: ann, bob"
    assert lines[1].startswith("Krippendorff's alpha: regulatory_barrier n/a, financing ")
    # ann and bob share the financing mark on one sentence of three marks in all.
    assert lines[2] == "annotator pairwise F1: regulatory_barrier n/a, financing 0.667, safety_risk n/a, commercialization n/a"
    assert lines[3].startswith("Cohen's kappa ann / bob (3 sentences): regulatory_barrier n/a, financing 0.400")
    flagged = re.fullmatch(r"likely wrong labels: (\d+) of (\d+) sentences flagged; the (\d+) most likely:", lines[4])
    assert flagged and flagged[1] == flagged[3] and int(flagged[2]) > int(flagged[1]) > 0
    assert len(lines) == 5 + 2 * int(flagged[1])
    [entry] = [line for line in lines if wrong_id in line]
    assert "financing: labelled 0, model " in entry


def test_json_and_review_batch(tmp_path: Path, planted: tuple[Path, str]) -> None:
    folder, wrong_id = planted
    output = tmp_path / "review.jsonl"
    result = invoke("review", "--labels", str(folder), "-n", "50", "-o", str(output), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["agreement"]["sentences"] == 3
    assert report["agreement"]["pairs"][0]["kappa"]["financing"] == pytest.approx(0.4)
    ids = [s["sentence_id"] for s in report["suspects"]]
    assert wrong_id in ids and len(ids) == 50 and report["flagged"] > 50
    [suspect] = [s for s in report["suspects"] if s["sentence_id"] == wrong_id]
    assert {"label": "financing", "given": 0} == {k: suspect["issues"][0][k] for k in ("label", "given")}
    batch = list(read_sentences(output))
    assert [s.sentence_id for s in batch] == ids
    assert result.stderr == f"50 sentences written to {output} for review\n"


def test_no_shared_sentences(tmp_path: Path) -> None:
    single = [r.model_copy(update={"annotations": r.annotations[:1]}) for r in starter_articles(3)]
    path = write_label_set(single, labels_dir=tmp_path, name="s", origin="test")[0]
    result = invoke("review", "--labels", str(path), "-n", "3")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "agreement: no sentence was labelled by two or more annotators"
    assert lines[1].endswith("the 3 most likely:")
    assert len(lines) == 2 + 3 * 2


def test_existing_output_needs_force(tmp_path: Path, planted: tuple[Path, str]) -> None:
    output = tmp_path / "review.jsonl"
    output.write_text("keep", encoding="utf-8")
    result = invoke("review", "--labels", str(planted[0]), "-o", str(output))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {output} exists; pass --force to overwrite it\n"
    assert output.read_text(encoding="utf-8") == "keep"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "{path}: no such file or directory"),
        ('{"sentence_id": \n', "{path}:1: not valid JSON (unexpected end of data)"),
        ('{"sentence_id": "x", "article_id": "a", "text": "t", "lang": "en", "regulatory_barrier": 2}\n', "{path}:1: regulatory_barrier: Input should be 0 or 1"),
    ],
)
def test_bad_label_set(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "labels.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke("review", "--labels", str(path), "-o", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message.format(path=path)}\n"
    assert not (tmp_path / "out.jsonl").exists()


def test_a_label_set_too_small_to_cross_validate(tmp_path: Path) -> None:
    starter = starter_rows()
    path = write_label_set(starter[:10], labels_dir=tmp_path, name="tiny", origin="test")[0]
    result = invoke("review", "--labels", str(path))
    assert result.exit_code == 1
    assert result.stderr == "Error: only 10 labelled sentences; training needs at least 20\n"

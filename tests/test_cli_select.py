from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotate.active import uncertainty
from annotate.classify import load_model
from annotate.cli import cli, read_sentences
from annotate.dataset import write_label_set
from annotate.labels import LABELS
from annotate.schemas import LabeledSentence

SURE = "The start-up raised $40 million in a Series B funding round led by venture capital investors."
CANDIDATES = [
    "The company said the figures would be published next week.",
    "Officials did not say when the review would end.",
    "The hospital began using the software in March.",
    "Investors and regulators are watching the market closely.",
    "Some doctors worry the tool could miss cases.",
]


def sentence(number: int, text: str, article: str = "art") -> dict:
    return {"article_id": article, "sentence_id": f"{article}-{number}", "paragraph": 1, "index": number, "text": text, "lang": "en"}


def write(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def no_labels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder, so the default labels/ is not found."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_unsure_sentence_ranks_above_a_sure_one(no_labels: Path, small_model: Path) -> None:
    model = load_model(small_model)
    values = uncertainty(model.predict_proba([SURE, *CANDIDATES]), model.thresholds)
    unsure = CANDIDATES[int(values[1:].argmax())]
    assert values[0] < 0.5 and values[1:].max() > 0.8, "the fixture sentences no longer span sure to unsure"
    path = write(no_labels / "s.jsonl", [sentence(0, SURE), sentence(1, unsure)])
    result = invoke("select", str(path), "-n", "1", "--model", str(small_model))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [unsure]
    result = invoke("select", str(path), "-n", "2", "--model", str(small_model), "-q")
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == [unsure, SURE]


def test_output_is_sentences_that_studio_push_reads(no_labels: Path, small_model: Path) -> None:
    records = [sentence(i, text) for i, text in enumerate([SURE, *CANDIDATES])]
    path = write(no_labels / "s.jsonl", records)
    output = no_labels / "next.jsonl"
    result = invoke("select", str(path), "-n", "3", "--strategy", "diverse", "--model", str(small_model), "-o", str(output))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    chosen = list(read_sentences(output))
    assert len(chosen) == 3
    by_id = {r["sentence_id"]: r for r in records}
    for item in chosen:
        assert {k: v for k, v in item.model_dump().items() if k in by_id[item.sentence_id]} == by_id[item.sentence_id]
    assert result.stderr.startswith("selected 3 of 6 sentences by diverse (0 already labelled, 0 repeats skipped); uncertainty ")


def labelled_row(record: dict) -> LabeledSentence:
    return LabeledSentence(
        sentence_id=record["sentence_id"], article_id=record["article_id"], text=record["text"], lang="en",
        decision="author", **{label: 0 for label in LABELS},
    )


def test_sentences_already_labelled_are_skipped(no_labels: Path, small_model: Path) -> None:
    records = [sentence(i, text) for i, text in enumerate(CANDIDATES)]
    path = write(no_labels / "s.jsonl", records)
    write_label_set([labelled_row(r) for r in records[:3]], labels_dir=no_labels / "labels", name="done", origin="test")
    # labels/ in the working folder is used by default.
    result = invoke("select", str(path), "-n", "10", "--model", str(small_model))
    assert result.exit_code == 0, result.output
    assert sorted(json.loads(line)["sentence_id"] for line in result.stdout.splitlines()) == ["art-3", "art-4"]
    assert "(3 already labelled, 0 repeats skipped)" in result.stderr
    elsewhere = write_label_set([labelled_row(records[4])], labels_dir=no_labels / "other", name="x", origin="test")[0]
    result = invoke("select", str(path), "-n", "10", "--model", str(small_model), "--labels", str(elsewhere), "-q")
    assert sorted(json.loads(line)["sentence_id"] for line in result.stdout.splitlines()) == ["art-0", "art-1", "art-2", "art-3"]


def test_rows_with_only_text_are_accepted(no_labels: Path, small_model: Path) -> None:
    path = write(no_labels / "s.jsonl", [{"text": SURE}, {"text": CANDIDATES[0], "id": 7}, {"text": SURE}])
    result = invoke("select", str(path), "-n", "3", "--model", str(small_model), "-q")
    assert result.exit_code == 0, result.output
    chosen = {row["text"]: row for row in map(json.loads, result.stdout.splitlines())}
    assert chosen[CANDIDATES[0]]["sentence_id"] == "7"
    assert chosen[SURE]["sentence_id"].startswith(chosen[SURE]["article_id"] + "-") and chosen[SURE]["lang"] == "en"
    assert len(result.stdout.splitlines()) == 2  # the repeated text is skipped


def test_existing_output_needs_force(no_labels: Path, small_model: Path) -> None:
    path = write(no_labels / "s.jsonl", [sentence(0, SURE)])
    output = no_labels / "next.jsonl"
    output.write_text("keep", encoding="utf-8")
    result = invoke("select", str(path), "-n", "1", "--model", str(small_model), "-o", str(output))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {output} exists; pass --force to overwrite it\n"
    assert output.read_text(encoding="utf-8") == "keep"
    result = invoke("select", str(path), "-n", "1", "--model", str(small_model), "-o", str(output), "--force", "-q")
    assert result.exit_code == 0 and json.loads(output.read_text(encoding="utf-8"))["text"] == SURE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "{path}: no such file or directory"),
        ("", "{path}: no sentences in the file"),
        (json.dumps(sentence(0, SURE)) + "\n{not json\n", "{path}:2: not valid JSON (unexpected character, expected a string key)"),
        ('{"text": "A sentence.", "index": -1}\n', "{path}:1: index: Input should be greater than or equal to 0"),
        ('{"text": ""}\n', "{path}:1: each line needs a 'text' field with a non-empty string"),
    ],
)
def test_bad_input(no_labels: Path, small_model: Path, content: str | None, message: str) -> None:
    path = no_labels / "s.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = invoke("select", str(path), "-n", "1", "--model", str(small_model), "-o", str(no_labels / "out.jsonl"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message.format(path=path)}\n"
    assert not (no_labels / "out.jsonl").exists()


def test_n_must_be_positive(no_labels: Path) -> None:
    path = write(no_labels / "s.jsonl", [sentence(0, SURE)])
    result = invoke("select", str(path), "-n", "0")
    assert result.exit_code == 2
    assert "Invalid value for '-n': 0 is not in the range x>=1." in result.stderr

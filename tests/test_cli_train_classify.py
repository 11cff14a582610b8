from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotate.classify import load_model
from annotate.cli import cli
from annotate.dataset import write_label_set
from annotate.ingest import read_articles
from annotate.labels import LABELS
from annotate.schemas import LabeledSentence
from annotate.segment import segment_all
from annotate.train import train

from .conftest import EXAMPLES, FIXTURES, STARTER, starter_articles


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train the default model through the CLI on a third of the starter set (given weight 1) plus imported annotations."""
    folder = tmp_path_factory.mktemp("roundtrip")
    labels = folder / "labels"
    starter_slice = starter_articles(3)
    write_label_set(starter_slice, labels_dir=labels, name="starter", origin="a third of the starter set")
    assert CliRunner().invoke(cli, ["labels", "import", str(FIXTURES / "ls_export.json"), "--labels-dir", str(labels)]).exit_code == 0
    train_args = ["train", "--labels", str(labels), "--set-weight", "starter=1", "-o", str(folder / "model"), "--no-eval", "--json"]
    result = CliRunner().invoke(cli, train_args)
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["training_sentences"] == len(starter_slice) + 4
    return folder / "model"


def test_train_writes_model_and_card(trained: Path) -> None:
    card = json.loads((trained / "model_card.json").read_text(encoding="utf-8"))
    assert card["labels"] == list(LABELS)
    assert set(card["thresholds"]) == set(LABELS) and all(0 < t < 1 for t in card["thresholds"].values())
    assert {"scikit-learn", "skops", "numpy"} <= set(card["library_versions"])
    assert len(card["training_data_sha256"]) == 64
    assert [path.name for path in trained.glob("*.skops")] == [card["model_file"]]
    assert (trained / card["model_file"]).stat().st_size < 50_000_000


def test_train_prints_cross_validated_metrics(tmp_path: Path) -> None:
    labels = tmp_path / "labels.jsonl"
    lines = (STARTER).read_text(encoding="utf-8").splitlines()
    labels.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", "--labels", str(labels), "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[1].split() == ["label", "precision", "recall", "f1", "support", "threshold"]
    assert [row.split()[0] for row in table[2:]] == [*LABELS, "micro", "macro"]


def test_train_refuses_a_tiny_label_set(tmp_path: Path) -> None:
    labels = tmp_path / "tiny.jsonl"
    labels.write_text("\n".join((STARTER).read_text(encoding="utf-8").splitlines()[:10]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", "--labels", str(labels), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == "Error: only 10 labelled sentences; training needs at least 20"


def test_round_trip_classify_with_trained_model(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(cli, ["classify", str(EXAMPLES), "--model", str(trained), "-o", str(out), "--digest", str(tmp_path / "digest.jsonl"), "-q"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert all(set(row["scores"]) == set(LABELS) and set(row["labels"]) <= set(LABELS) for row in rows)
    model = load_model(trained)
    for row in rows:
        assert row["labels"] == [label for label in LABELS if row["scores"][label] >= model.card.thresholds[label]]
    funding = next(row for row in rows if "raised 2.96 billion yuan" in row["text"])
    assert "financing" in funding["labels"]
    digests = [json.loads(line) for line in (tmp_path / "digest.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(digests) == 10
    assert sum(d["sentences"] for d in digests) == len(rows)


def test_classify_prints_digest_with_paragraph_references() -> None:
    result = CliRunner().invoke(cli, ["classify", str(EXAMPLES / "en_wire_regulation.txt")])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "China limits medical AI to 'assessments only' as hospitals refuse to pay"
    assert [line.split(":")[0].strip() for line in lines if line.startswith("  ") and not line.startswith("    ")] == list(LABELS)
    assert any(line.startswith("    [para. ") for line in lines)


def test_classify_presplit_sentences_pass_fields_through(tmp_path: Path) -> None:
    sentences = tmp_path / "s.jsonl"
    sentences.write_text('{"text": "The startup raised $40 million in a Series B round.", "row": 7}\n{"text": "它于周二发布。", "row": 8}\n', encoding="utf-8")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(cli, ["classify", "--sentences", str(sentences), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [row["row"] for row in rows] == ["7", "8"]
    assert "financing" in rows[0]["labels"].split(";")
    assert set(rows[0]) == {"text", "row", "labels", *(f"scores_{label}" for label in LABELS)}


def test_classify_presplit_without_text(tmp_path: Path) -> None:
    sentences = tmp_path / "s.jsonl"
    sentences.write_text('{"text": "fine"}\n{"body": "no text"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["classify", "--sentences", str(sentences), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {sentences}:2: each line needs a 'text' field with a string\n"
    assert not (tmp_path / "o.jsonl").exists()


def test_classify_with_missing_model(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["classify", str(EXAMPLES / "zh_hospital_ai.txt"), "--model", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path}: no model card (model_card.json); train one with 'annotate train -o {tmp_path}'\n"


def test_classify_needs_paths_or_sentences() -> None:
    result = CliRunner().invoke(cli, ["classify"])
    assert result.exit_code == 2
    assert "Give article PATHS or --sentences FILE, not both or neither." in result.stderr


def test_a_small_first_label_set_does_not_tag_everything(tmp_path: Path) -> None:
    """Ten example articles labelled by the shipped model: too few for a classifier that
    generalises, so out-of-fold F1 favours tagging every sentence. The thresholds stay cautious."""
    sentences = list(segment_all(read_articles([EXAMPLES])))
    shipped = load_model()
    decided = shipped.predict_proba([s.text for s in sentences]) >= shipped.thresholds
    rows = [
        LabeledSentence(
            sentence_id=s.sentence_id, article_id=s.article_id, text=s.text, lang=s.lang,
            **{label: int(flag) for label, flag in zip(LABELS, flags, strict=True)}, decision="single",
        )
        for s, flags in zip(sentences, decided, strict=True)
    ]
    model = load_model(Path(train(rows, model_dir=tmp_path / "small", evaluate=False).model_dir))
    tagged = model.predict_proba([s.text for s in sentences]) >= model.thresholds
    assert np.abs(tagged.mean(axis=0) - decided.mean(axis=0)).max() < 0.15, (tagged.mean(axis=0), decided.mean(axis=0))

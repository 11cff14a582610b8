from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from annotate.cli import cli
from annotate.labels import LABELS

from .conftest import EXAMPLES


def _sentences(tmp_path: Path) -> Path:
    path = tmp_path / "sentences.jsonl"
    assert CliRunner().invoke(cli, ["ingest", str(EXAMPLES / "en_wire_regulation.txt"), "-o", str(path), "-q"]).exit_code == 0
    return path


def test_export_tasks_match_the_labelling_config(tmp_path: Path) -> None:
    out = tmp_path / "tasks.json"
    result = CliRunner().invoke(cli, ["export", str(_sentences(tmp_path)), "-o", str(out)])
    assert result.exit_code == 0, result.output
    tasks = json.loads(out.read_text(encoding="utf-8"))
    config = (Path(__file__).resolve().parent.parent / "schemas" / "label_config.xml").read_text(encoding="utf-8")
    for variable in ("$text", "$title", "$prev", "$next"):
        assert variable in config
        assert variable[1:] in tasks[0]["data"]
    assert "predictions" not in tasks[0]


def test_export_with_model_adds_valid_predictions(tmp_path: Path, small_model: Path) -> None:
    out = tmp_path / "tasks.json"
    result = CliRunner().invoke(cli, ["export", str(_sentences(tmp_path)), "-o", str(out), "--model", str(small_model)])
    assert result.exit_code == 0, result.output
    tasks = json.loads(out.read_text(encoding="utf-8"))
    card = json.loads((small_model / "model_card.json").read_text(encoding="utf-8"))
    for task in tasks:
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == card["model_id"]
        assert 0.5 <= prediction["score"] <= 1.0
        for region in prediction["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == ("labels", "text", "choices")
            assert set(region["value"]["choices"]) <= set(LABELS)
    assert any(task["predictions"][0]["result"] for task in tasks)


def test_export_refuses_rows_that_are_not_sentences(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "A sentence."}\n{"text": "Another.", "paragraph": "third"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["export", str(bad), "-o", str(tmp_path / "t.json")])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {bad}:2: paragraph: Input should be a valid integer, unable to parse string as an integer\n"
    bad.write_text('{"id": "s1"}\n', encoding="utf-8")
    result = CliRunner().invoke(cli, ["export", str(bad), "-o", str(tmp_path / "t.json")])
    assert result.stderr == f"Error: {bad}:1: each line needs a 'text' field with a non-empty string\n"
    assert not (tmp_path / "t.json").exists()


def test_export_accepts_rows_with_only_text_and_derives_ids_as_ingest_does(tmp_path: Path) -> None:
    texts = ["The FDA cleared the triage tool in May.", "医院拒绝为AI辅助诊断付费。"]
    minimal = tmp_path / "minimal.jsonl"
    minimal.write_text("".join(json.dumps({"text": text, "score": 0.5}) + "\n" for text in texts) + '{"text": "Named.", "id": "n-1"}\n', encoding="utf-8")
    out = tmp_path / "tasks.json"
    result = CliRunner().invoke(cli, ["export", str(minimal), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    data = [task["data"] for task in json.loads(out.read_text(encoding="utf-8"))]
    for text, row in zip(texts, data, strict=False):
        article = tmp_path / "article.txt"
        article.write_text(text, encoding="utf-8")
        ingested = json.loads(CliRunner().invoke(cli, ["ingest", str(article), "-q"]).stdout)
        assert {key: row[key] for key in ("sentence_id", "article_id", "lang", "paragraph")} == {key: ingested[key] for key in ("sentence_id", "article_id", "lang", "paragraph")}
    assert data[2]["sentence_id"] == "n-1" and [row["lang"] for row in data] == ["en", "zh", "en"]

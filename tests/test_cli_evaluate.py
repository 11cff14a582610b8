from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotate.cli import cli
from annotate.dataset import load_labels, write_label_set
from annotate.labels import LABELS

from .conftest import starter_articles

PNGS = ("pr_curves.png", "reliability.png", "learning_curve.png")


@pytest.fixture(scope="module")
def label_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A label set of every eighth starter article (the CLI run stays quick)."""
    folder = tmp_path_factory.mktemp("labels")
    write_label_set(starter_articles(8, start=2), labels_dir=folder, name="sample", origin="test")
    return folder


@pytest.fixture(scope="module")
def test_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("test") / "test.jsonl"
    path.write_text("".join(json.dumps(r.model_dump()) + "\n" for r in starter_articles(10, start=4)), encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_cross_validated_report_with_plots(tmp_path: Path, label_dir: Path) -> None:
    out = tmp_path / "report"
    result = invoke("evaluate", "--labels", str(label_dir), "-o", str(out))
    assert result.exit_code == 0, result.output
    for name in PNGS:
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert f"grouped 5-fold cross-validation on {label_dir}" in report
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["label", "precision", "recall", "f1", "support", "threshold", "brier"]
    assert [line.split()[0] for line in lines[1:7]] == ["regulatory_barrier", "financing", "safety_risk", "commercialization", "micro", "macro"]
    # Model, keywords and annotators side by side: per-label F1 and macro-F1 in columns.
    assert lines[8].split() == ["F1", "side", "by", "side", *LABELS, "macro"]
    for line, name in zip(lines[9:12], ("model", "keywords", "annotators"), strict=True):
        cells = line.split()
        assert cells[0] == name and all(0 <= float(cell) <= 1 for cell in cells[1:6])
    sentences = len(load_labels(label_dir))
    assert lines[11].endswith(f"({sentences} sentences, one annotator against another)")
    assert lines[12].startswith("keyword baseline: rules-")
    assert lines[13].startswith("learning curve (macro-F1): 25% ")
    assert lines[14].startswith("learning curve, n-grams only (no encoder): 25% ")
    assert "| annotators against each other (" in report and "macro-F1, n-grams only (no encoder)" in report
    assert f"report written to {out / 'report.md'} with 3 plots" in result.stderr


def test_json_summary(tmp_path: Path, label_dir: Path) -> None:
    result = invoke("evaluate", "--labels", str(label_dir), "-o", str(tmp_path / "r"), "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["mode"] == "cross-validation"
    assert [p["fraction"] for p in summary["learning_curve"]] == [0.25, 0.5, 0.75, 1.0]
    assert summary["other_curve"]["id"] == "n-grams only (no encoder)"
    assert [p["fraction"] for p in summary["other_curve"]["points"]] == [0.25, 0.5, 0.75, 1.0]
    # Cross-validation measures the linear model: the tuned transformer has seen most real sentences, and the
    # article-context stage is fitted on the linear model's out-of-fold scores.
    trained = invoke("train", "--labels", str(label_dir), "-o", str(tmp_path / "model"), "--json", "--tuned-weight", "0", "--no-article-context")
    assert trained.exit_code == 0, trained.output
    # The whole share of the curve is what ``annotate train`` cross-validates and writes on its card.
    assert summary["learning_curve"][-1]["macro_f1"] == pytest.approx(json.loads(trained.stdout)["metrics"]["macro"]["f1"], abs=5e-4)
    assert summary["baseline"]["id"].startswith("rules-")
    assert len(summary["co_occurrence"]["counts"]) == 5
    assert summary["annotators"]["sentences"] == summary["sentences"]
    assert all(0.5 < f1 <= 1 for f1 in summary["annotators"]["pairwise_f1"].values())
    assert result.stderr == ""


def test_scoring_a_model_on_a_test_file(tmp_path: Path, label_dir: Path, test_file: Path, small_model: Path) -> None:
    out = tmp_path / "report"
    result = invoke("evaluate", "--labels", str(label_dir), "--model", str(small_model), "--test", str(test_file), "-o", str(out), "--json", "-q")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    card = json.loads((small_model / "model_card.json").read_text(encoding="utf-8"))
    assert summary["mode"] == "test"
    assert summary["model_id"] == card["model_id"]
    assert summary["thresholds"] == card["thresholds"]
    assert summary["source"] == str(test_file)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert card["model_id"] in report
    for name in PNGS:
        assert (out / name).exists()


def test_existing_report_needs_force(tmp_path: Path, label_dir: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "report.md").write_text("keep me", encoding="utf-8")
    result = invoke("evaluate", "--labels", str(label_dir), "-o", str(out))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out / 'report.md'} exists; pass --force to overwrite it\n"
    assert (out / "report.md").read_text(encoding="utf-8") == "keep me"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "{path}: no such file or directory"),
        (lambda p: p.write_text("", encoding="utf-8"), "{path}: no labelled sentences"),
        (lambda p: p.write_text('{"sentence_id": "x"\n', encoding="utf-8"), "{path}:1: not valid JSON (unexpected end of data)"),
        (lambda p: p.write_text('{"sentence_id": "x"}\n', encoding="utf-8"), "{path}:1: article_id: Field required"),
    ],
)
def test_bad_test_file(tmp_path: Path, label_dir: Path, small_model: Path, make, message: str) -> None:
    path = tmp_path / "test.jsonl"
    make(path)
    result = invoke("evaluate", "--labels", str(label_dir), "--model", str(small_model), "--test", str(path), "-o", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {message.format(path=path)}\n"
    assert not (tmp_path / "r").exists()


def test_missing_label_set(tmp_path: Path) -> None:
    result = invoke("evaluate", "--labels", str(tmp_path / "nope"), "-o", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path / 'nope'}: no such file or directory\n"


def test_model_without_test_is_a_usage_error(tmp_path: Path, small_model: Path) -> None:
    result = invoke("evaluate", "--model", str(small_model), "-o", str(tmp_path / "r"))
    assert result.exit_code == 2
    assert "Error: --model needs --test: cross-validation trains its own models on the label set." in result.stderr


def test_without_matplotlib_the_error_says_what_to_install(tmp_path: Path, label_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes "import matplotlib" fail
    result = invoke("evaluate", "--labels", str(label_dir), "-o", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert result.stderr == "Error: the report's plots need matplotlib; install it with: pip install 'annotate[reports]'\n"

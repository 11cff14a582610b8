from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotate import evaluate as evaluate_module
from annotate.classify import load_model
from annotate.errors import InputError
from annotate.evaluate import (
    LEARNING_PLOT,
    PR_PLOT,
    RELIABILITY_PLOT,
    REPORT_FILE,
    Evaluation,
    cross_validated_evaluation,
    model_evaluation,
    render_report,
    write_report,
)
from annotate.labels import LABELS
from annotate.rules import load_rules
from annotate.train import cross_validate

from .conftest import starter_articles

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def rows():
    """Every eighth article of the starter set: big enough for a learning curve, quick to cross-validate."""
    return starter_articles(8, start=1)


@pytest.fixture(scope="module")
def evaluation(rows):
    return cross_validated_evaluation(rows, rules=load_rules())


@pytest.fixture(scope="module")
def train_metrics(rows):
    """What ``annotate train`` reports on the same rows: computed by train.py, not by the evaluation."""
    return cross_validate(rows)[0]


def test_cross_validation_matches_what_train_reports(rows, evaluation, train_metrics) -> None:
    assert evaluation.metrics == train_metrics
    assert evaluation.mode == "cross-validation"
    assert evaluation.targets.shape == evaluation.scores.shape == (len(rows), len(LABELS))


def test_learning_curve_points(evaluation, rows, train_metrics) -> None:
    curve = evaluation.learning_curve
    assert [p.fraction for p in curve] == [0.25, 0.5, 0.75, 1.0]
    sizes = [p.sentences for p in curve]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1] < len(rows)
    # The whole share is the recipe ``annotate train`` cross-validates; the smaller shares are other models.
    assert (curve[-1].macro_f1, curve[-1].micro_f1) == (train_metrics["macro"]["f1"], train_metrics["micro"]["f1"])
    assert curve[0].macro_f1 != curve[-1].macro_f1, f"a quarter of the articles scores as all of them: {curve}"


def test_baseline_is_the_rules_scored_on_the_same_sentences(rows, evaluation) -> None:
    rules = load_rules()
    assert evaluation.baseline_id == rules.version
    decided = rules.predict_proba([row.text for row in rows]) >= 0.5
    f1 = []
    for column in range(len(LABELS)):
        truth = evaluation.targets[:, column] == 1
        tp = (decided[:, column] & truth).sum()
        f1.append(2 * tp / (decided[:, column].sum() + truth.sum()))
    assert evaluation.baseline["macro"]["f1"] == pytest.approx(np.mean(f1), abs=1e-4)


def test_brier_is_reported_per_label(evaluation) -> None:
    for column, label in enumerate(LABELS):
        expected = np.mean((evaluation.scores[:, column] - evaluation.targets[:, column]) ** 2)
        assert evaluation.metrics[label]["brier"] == pytest.approx(expected, abs=1e-4)


def _tiny(targets: list[list[int]], decisions: list[list[int]]) -> Evaluation:
    t = np.array(targets)
    return Evaluation(
        mode="test", source="tiny", model_id="m", articles=1, targets=t, scores=np.array(decisions, dtype=float), decisions=np.array(decisions),
        thresholds=np.full(4, 0.5), metrics={}, baseline_id="rules-x", baseline={},
    )


def test_co_occurrence_counts_true_against_predicted_labels() -> None:
    tiny = _tiny(
        targets=[[1, 0, 0, 1], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]],
        decisions=[[1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
    )
    expected = np.array(
        [
            [1, 0, 0, 0, 0],  # regulatory_barrier: found
            [0, 0, 0, 0, 1],  # financing: missed, nothing predicted
            [0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],  # commercialization: only regulatory_barrier predicted
            [0, 0, 1, 0, 1],  # none: one false safety_risk, one correct none
        ]
    )
    np.testing.assert_array_equal(tiny.co_occurrence, expected)


def test_report_and_plots_are_written(tmp_path: Path, evaluation) -> None:
    written = write_report(evaluation, tmp_path / "report")
    assert [p.name for p in written] == [PR_PLOT, RELIABILITY_PLOT, LEARNING_PLOT, REPORT_FILE]
    for name in (PR_PLOT, RELIABILITY_PLOT, LEARNING_PLOT):
        assert (tmp_path / "report" / name).read_bytes().startswith(PNG_MAGIC)
    report = (tmp_path / "report" / REPORT_FILE).read_text(encoding="utf-8")
    assert f"| **macro** | {evaluation.metrics['macro']['precision']:.3f} |" in report
    assert f"| keywords ({evaluation.baseline_id}) |" in report
    assert "| true \\ predicted | regulatory_barrier | financing | safety_risk | commercialization | none |" in report
    assert "| 25% |" in report and "| 100% |" in report
    for name in (PR_PLOT, RELIABILITY_PLOT, LEARNING_PLOT):
        assert f"]({name})" in report
    assert sorted(p.name for p in (tmp_path / "report").iterdir()) == sorted([PR_PLOT, RELIABILITY_PLOT, LEARNING_PLOT, REPORT_FILE])


def test_a_failed_plot_leaves_the_old_report_untouched(tmp_path: Path, evaluation, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / REPORT_FILE).write_text("old report", encoding="utf-8")

    def broken(_: Evaluation) -> bytes:
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(evaluate_module, "reliability_plot", broken)
    with pytest.raises(RuntimeError):
        write_report(evaluation, out)
    assert [p.name for p in out.iterdir()] == [REPORT_FILE]
    assert (out / REPORT_FILE).read_text(encoding="utf-8") == "old report"


def test_model_evaluation_uses_the_model_thresholds(small_model: Path, rows) -> None:
    model = load_model(small_model)
    # Articles the small model was not trained on (it takes every third article from the first).
    trained_on = {row.article_id for row in starter_articles(3)}
    test_rows = [row for row in rows if row.article_id not in trained_on]
    result = model_evaluation(test_rows, model=model, rules=load_rules(), source="held back")
    assert result.model_id == model.card.model_id
    np.testing.assert_array_equal(result.thresholds, model.thresholds)
    # Each sentence judged in its article, as classify judges it.
    scores = model.predict_proba([r.text for r in test_rows], [(r.prev, r.next) for r in test_rows], [(r.article_id, r.paragraph) for r in test_rows])
    np.testing.assert_array_equal(result.decisions, scores >= model.thresholds)
    assert result.learning_curve == []
    assert "held back" in render_report(result)


def test_model_evaluation_learning_curve_trains_on_the_label_set(small_model: Path, rows) -> None:
    test_rows = rows[:60]
    result = model_evaluation(test_rows, model=load_model(small_model), rules=load_rules(), training_rows=rows[60:], fractions=(0.5,))
    assert [p.fraction for p in result.learning_curve] == [0.5, 1.0]
    assert result.learning_curve[-1].sentences == len(rows) - 60


def test_an_empty_test_set_is_refused(small_model: Path) -> None:
    with pytest.raises(InputError, match="the test file has no labelled sentences"):
        model_evaluation([], model=load_model(small_model), rules=load_rules())


def test_bad_fractions_are_refused(rows) -> None:
    with pytest.raises(InputError, match=r"learning-curve fractions must be in \(0, 1\], got \[0.0, 1.0\]"):
        cross_validated_evaluation(rows, rules=load_rules(), fractions=(0.0,))

"""Evaluation reports: metrics, keyword baseline, learning curve, calibration and plots.

Two modes. Without a test file, :func:`cross_validated_evaluation` runs grouped
cross-validation on the label set exactly as ``annotate train`` does (whole
articles per fold, thresholds picked inside each training part). With one,
:func:`model_evaluation` scores a saved model on that file. Both add the
keyword-rules baseline scored on the same sentences and a learning curve
(macro-F1 when training on 25/50/75/100 % of the articles), and
:func:`write_report` turns the result into ``report.md`` plus PNG plots.
matplotlib is imported only when plots are drawn.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from sklearn.metrics import average_precision_score, precision_recall_curve
from sklearn.model_selection import GroupKFold

from ._io import atomic_write
from .errors import AnnotateError, InputError
from .labels import LABELS
from .schemas import LabeledSentence, Recipe
from .train import (
    CV_FOLDS,
    best_thresholds,
    check_trainable,
    embed,
    fit_model,
    label_matrix,
    metrics_table,
    neighbours_of,
    out_of_fold_scores,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from .classify import Model
    from .rules import KeywordRules

LEARNING_FRACTIONS = (0.25, 0.5, 0.75, 1.0)
REPORT_FILE = "report.md"
PR_PLOT = "pr_curves.png"
LEARNING_PLOT = "learning_curve.png"
RELIABILITY_PLOT = "reliability.png"
RELIABILITY_BINS = 10
NONE = "none"
# The inner split that picks thresholds inside a training part, as in train.cross_validate.
INNER_FOLDS = 3


@dataclass(frozen=True)
class LearningPoint:
    """Scores of models trained on a share of the training articles."""

    fraction: float
    sentences: int
    macro_f1: float
    micro_f1: float


@dataclass
class Evaluation:
    """Everything a report shows; arrays have one row per sentence, columns in :data:`LABELS` order."""

    mode: str
    source: str
    model_id: str
    articles: int
    targets: NDArray[Any]
    scores: NDArray[Any]
    decisions: NDArray[Any]
    thresholds: NDArray[Any]
    metrics: dict[str, dict[str, float]]
    baseline_id: str
    baseline: dict[str, dict[str, float]]
    learning_curve: list[LearningPoint] = field(default_factory=list)
    # The same curve for the other feature set: without the encoder when the model has it, and with it when not.
    other_curve_id: str = ""
    other_curve: list[LearningPoint] = field(default_factory=list)
    # Annotators scored against each other on the sentences two or more of them labelled.
    annotator_sentences: int = 0
    annotator_f1: dict[str, float | None] = field(default_factory=dict)

    @property
    def co_occurrence(self) -> NDArray[Any]:
        """``(5, 5)`` counts: sentences with true label *i* (rows) that got predicted label *j* (columns).

        The last row and column are ``none``: sentences with no true label, or no predicted one.
        """
        true = _with_none(self.targets)
        predicted = _with_none(self.decisions)
        return np.asarray(true.T.astype(np.int64) @ predicted.astype(np.int64), dtype=int)

    def summary(self) -> dict[str, Any]:
        """The figures as plain JSON-ready data."""
        return {
            "mode": self.mode,
            "source": self.source,
            "model_id": self.model_id,
            "sentences": int(self.targets.shape[0]),
            "articles": self.articles,
            "metrics": self.metrics,
            "thresholds": {label: float(t) for label, t in zip(LABELS, self.thresholds, strict=True)},
            "baseline": {"id": self.baseline_id, "metrics": self.baseline},
            "learning_curve": [point.__dict__ for point in self.learning_curve],
            "other_curve": {"id": self.other_curve_id, "points": [point.__dict__ for point in self.other_curve]},
            "co_occurrence": {"labels": [*LABELS, NONE], "counts": self.co_occurrence.tolist()},
            "annotators": {"sentences": self.annotator_sentences, "pairwise_f1": self.annotator_f1},
        }


def _annotator_reference(rows: Sequence[LabeledSentence]) -> dict[str, Any]:
    """The Evaluation fields that compare annotators with each other, when some sentences have two or more."""
    from .review import agreement

    agreed = agreement(rows)
    if not agreed.sentences:
        return {}
    return {"annotator_sentences": agreed.sentences, "annotator_f1": {a.label: a.pairwise_f1 for a in agreed.labels}}


def _with_none(matrix: NDArray[Any]) -> NDArray[Any]:
    matrix = np.asarray(matrix, dtype=np.int8)
    return np.hstack([matrix, (matrix.sum(axis=1) == 0).astype(np.int8)[:, None]])


def _fit_and_score(
    texts: NDArray[Any],
    targets: NDArray[Any],
    groups: NDArray[Any],
    scored: NDArray[Any],
    *,
    recipe: Recipe,
    embeddings: NDArray[Any] | None,
    scored_embeddings: NDArray[Any] | None,
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Fit ``recipe`` on ``texts`` with thresholds from their own grouped out-of-fold scores; score ``scored``.

    ``embeddings`` and ``scored_embeddings`` are the encoder's rows for
    ``texts`` and ``scored`` (``None`` when the recipe has no encoder).

    A small share of a small label set may have no example of a label in some
    split; the model then never predicts it, which is the honest result for
    that much data, so scikit-learn's warning about it is not passed on.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Label not .* is present in all training examples", category=UserWarning)
        inner = out_of_fold_scores(list(texts), targets, list(groups), recipe=recipe, embeddings=embeddings, folds=INNER_FOLDS)
        thresholds = best_thresholds(targets, inner)
        model = fit_model(list(texts), targets, recipe=recipe, embeddings=embeddings)
    return np.asarray(model.predict_proba(list(scored), scored_embeddings)), thresholds


def _rows(array: NDArray[Any] | None, index: NDArray[Any]) -> NDArray[Any] | None:
    return None if array is None else array[index]


def _article_shares(groups: NDArray[Any], fractions: Sequence[float], rng: np.random.Generator) -> dict[float, NDArray[Any]]:
    """Per fraction, a boolean mask over ``groups`` keeping that share of the articles.

    The shares are nested (the 25 % articles are among the 50 %), so the curve
    shows the effect of adding data rather than of drawing other articles.
    """
    articles = rng.permutation(np.unique(groups))
    masks = {}
    for fraction in fractions:
        keep = max(INNER_FOLDS, math.ceil(fraction * len(articles)))
        masks[fraction] = np.isin(groups, articles[:keep])
    return masks


def _check_fractions(fractions: Sequence[float]) -> tuple[float, ...]:
    if not fractions or any(not 0 < f <= 1 for f in fractions):
        raise InputError(f"learning-curve fractions must be in (0, 1], got {list(fractions)}")
    return tuple(sorted(set(fractions)))


def _rule_metrics(rules: KeywordRules, texts: Sequence[str], targets: NDArray[Any]) -> dict[str, dict[str, float]]:
    return metrics_table(targets, (rules.predict_proba(texts) >= rules.thresholds).astype(np.int8))


def cross_validated_evaluation(
    rows: Sequence[LabeledSentence],
    *,
    rules: KeywordRules,
    folds: int = CV_FOLDS,
    fractions: Sequence[float] = LEARNING_FRACTIONS,
    seed: int = 0,
    source: str = "grouped cross-validation on the label set",
    recipe: Recipe | None = None,
) -> Evaluation:
    """Grouped cross-validation of the training recipe on ``rows``, as ``annotate train`` does it.

    Each outer fold holds out whole articles; for every fraction a model is
    trained on that share of the remaining articles (thresholds from its own
    inner grouped split) and scores the held-out fold. The full share gives
    the reported metrics, identical to :func:`annotate.train.cross_validate`.
    """
    check_trainable(rows)
    fractions = _check_fractions([*fractions, 1.0])
    # The tuned transformer has seen most real-article sentences: cross-validation measures the linear model alone.
    recipe = linear_part(recipe or Recipe())
    other = other_recipe(recipe)
    texts = np.asarray([row.text for row in rows], dtype=object)
    groups = np.asarray([row.article_id for row in rows])
    targets = label_matrix(rows)
    embeddings = embed(list(texts), recipe if recipe.encoder_weight else other, neighbours=neighbours_of(rows))
    runs = {}
    for run_recipe in (recipe, other):
        runs[run_recipe.encoder_weight] = _cross_validated_shares(
            texts, targets, groups, recipe=run_recipe, embeddings=embeddings if run_recipe.encoder_weight else None,
            fractions=fractions, folds=folds, rng=np.random.default_rng(seed),
        )  # fmt: skip
    scores, decisions, _ = runs[recipe.encoder_weight][1.0]
    return Evaluation(
        mode="cross-validation",
        source=source,
        model_id=f"recipe {recipe.model_dump_json()} retrained in each fold",
        articles=len(np.unique(groups)),
        targets=targets,
        scores=scores,
        decisions=decisions,
        # What ``annotate train`` picks on these rows: the best thresholds on the same out-of-fold scores.
        thresholds=best_thresholds(targets, scores),
        metrics=metrics_table(targets, decisions, scores),
        baseline_id=rules.version,
        baseline=_rule_metrics(rules, list(texts), targets),
        learning_curve=[_point(f, trained, targets, chosen) for f, (_, chosen, trained) in runs[recipe.encoder_weight].items()],
        other_curve_id=curve_name(other),
        other_curve=[_point(f, trained, targets, chosen) for f, (_, chosen, trained) in runs[other.encoder_weight].items()],
        **_annotator_reference(rows),
    )


def linear_part(recipe: Recipe) -> Recipe:
    """``recipe`` without the tuned transformer: what cross-validation and learning curves can retrain."""
    return recipe.model_copy(update={"tuned_weight": 0.0})


def other_recipe(recipe: Recipe) -> Recipe:
    """``recipe`` with the encoder blocks taken out, or put in (at the default weights) when it has none."""
    if recipe.encoder_weight:
        return recipe.model_copy(update={"encoder_weight": 0.0, "context_weight": 0.0})
    return recipe.model_copy(update={"encoder_weight": Recipe().encoder_weight, "context_weight": Recipe().context_weight})


def curve_name(recipe: Recipe) -> str:
    return f"with the sentence encoder (weight {recipe.encoder_weight:g})" if recipe.encoder_weight else "n-grams only (no encoder)"


def _cross_validated_shares(
    texts: NDArray[Any],
    targets: NDArray[Any],
    groups: NDArray[Any],
    *,
    recipe: Recipe,
    embeddings: NDArray[Any] | None,
    fractions: Sequence[float],
    folds: int,
    rng: np.random.Generator,
) -> dict[float, tuple[NDArray[Any], NDArray[Any], int]]:
    """Per fraction of the training articles: out-of-fold scores, decisions and the mean training size."""
    scores = {f: np.zeros(targets.shape) for f in fractions}
    decisions = {f: np.zeros(targets.shape, dtype=np.int8) for f in fractions}
    trained_on = {f: 0 for f in fractions}
    for train_index, test_index in GroupKFold(n_splits=folds).split(texts, targets, groups):
        shares = _article_shares(groups[train_index], fractions, rng)
        for fraction in fractions:
            part = train_index[shares[fraction]]
            trained_on[fraction] += len(part)
            fold_scores, thresholds = _fit_and_score(
                texts[part], targets[part], groups[part], texts[test_index],
                recipe=recipe, embeddings=_rows(embeddings, part), scored_embeddings=_rows(embeddings, test_index),
            )  # fmt: skip
            scores[fraction][test_index] = fold_scores
            decisions[fraction][test_index] = fold_scores >= thresholds
    return {f: (scores[f], decisions[f], round(trained_on[f] / folds)) for f in fractions}


def _point(fraction: float, sentences: int, targets: NDArray[Any], decisions: NDArray[Any]) -> LearningPoint:
    table = metrics_table(targets, decisions)
    return LearningPoint(fraction=fraction, sentences=sentences, macro_f1=table["macro"]["f1"], micro_f1=table["micro"]["f1"])


def model_evaluation(
    test_rows: Sequence[LabeledSentence],
    *,
    model: Model,
    rules: KeywordRules,
    training_rows: Sequence[LabeledSentence] | None = None,
    fractions: Sequence[float] = LEARNING_FRACTIONS,
    seed: int = 0,
    source: str = "test file",
    recipe: Recipe | None = None,
) -> Evaluation:
    """Score ``model`` on labelled ``test_rows`` with its own thresholds.

    With ``training_rows`` the learning curve trains fresh models of
    ``recipe`` (default: the model's own) on shares of those articles and
    scores them on the test rows.
    """
    if not test_rows:
        raise InputError("the test file has no labelled sentences")
    texts = [row.text for row in test_rows]
    targets = label_matrix(test_rows)
    scores = model.predict_proba(texts, neighbours_of(test_rows), [(row.article_id, row.paragraph) for row in test_rows])
    decisions = (scores >= model.thresholds).astype(np.int8)
    curves: dict[float, list[LearningPoint]] = {}
    # The curves retrain the linear model on shares of the labels; the tuned transformer stays as it was tuned.
    recipe = linear_part(recipe or model.card.recipe)
    other = other_recipe(recipe)
    if training_rows is not None:
        check_trainable(training_rows)
        train_texts = np.asarray([row.text for row in training_rows], dtype=object)
        train_groups = np.asarray([row.article_id for row in training_rows])
        train_targets = label_matrix(training_rows)
        shares = _article_shares(train_groups, _check_fractions([*fractions, 1.0]), np.random.default_rng(seed))
        with_encoder = recipe if recipe.encoder_weight else other
        train_embeddings = embed(list(train_texts), with_encoder, neighbours=neighbours_of(training_rows))
        test_embeddings = embed(texts, with_encoder, neighbours=neighbours_of(test_rows))
        for run_recipe in (recipe, other):
            uses = bool(run_recipe.encoder_weight)
            curves[run_recipe.encoder_weight] = []
            for fraction, mask in shares.items():
                part_scores, thresholds = _fit_and_score(
                    train_texts[mask], train_targets[mask], train_groups[mask], np.asarray(texts, dtype=object), recipe=run_recipe,
                    embeddings=_rows(train_embeddings, mask) if uses else None, scored_embeddings=test_embeddings if uses else None,
                )  # fmt: skip
                curves[run_recipe.encoder_weight].append(_point(fraction, int(mask.sum()), targets, (part_scores >= thresholds).astype(np.int8)))
    return Evaluation(
        mode="test",
        source=source,
        model_id=model.card.model_id,
        articles=len({row.article_id for row in test_rows}),
        targets=targets,
        scores=scores,
        decisions=decisions,
        thresholds=model.thresholds,
        metrics=metrics_table(targets, decisions, scores),
        baseline_id=rules.version,
        baseline=_rule_metrics(rules, texts, targets),
        learning_curve=curves.get(recipe.encoder_weight, []),
        other_curve_id=curve_name(other) if curves else "",
        other_curve=curves.get(other.encoder_weight, []),
        **_annotator_reference(test_rows),
    )


# --- the report ------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _f(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def render_report(evaluation: Evaluation, *, title: str = "Evaluation report") -> str:
    """The report as Markdown, linking the PNGs that :func:`write_report` saves beside it."""
    e = evaluation
    m = e.metrics
    lines = [f"# {title}", ""]
    lines.append(f"- Scored: {e.source}, {e.targets.shape[0]} sentences from {e.articles} articles")
    lines.append(f"- Model: {e.model_id}")
    lines.append(f"- Keyword baseline: {e.baseline_id} (schemas/rules.toml)")
    lines.append(f"- Generated: {datetime.now(UTC).isoformat(timespec='seconds')}")
    lines += ["", "## Per-label metrics", ""]
    rows = [
        [label, _f(m[label]["precision"]), _f(m[label]["recall"]), _f(m[label]["f1"]), int(m[label]["support"]), f"{t:.2f}", _f(m[label].get("brier"))]
        for label, t in zip(LABELS, e.thresholds, strict=True)
    ]
    rows += [[f"**{avg}**", _f(m[avg]["precision"]), _f(m[avg]["recall"]), _f(m[avg]["f1"]), "", "", ""] for avg in ("micro", "macro")]
    lines += _table(["label", "precision", "recall", "F1", "support", "threshold", "Brier"], rows)
    lines += [
        "",
        "Brier score: mean squared gap between probability and truth (0 is perfect; always answering the label's base rate scores p(1-p)).",
        "",
        "## Model, keyword baseline and annotators side by side (F1)",
        "",
    ]
    comparison = [[name, *(_f(table[label]["f1"]) for label in LABELS), _f(table["micro"]["f1"]), _f(table["macro"]["f1"])] for name, table in (("model", m), (f"keywords ({e.baseline_id})", e.baseline))]
    if e.annotator_f1:
        per_label = [e.annotator_f1[label] for label in LABELS]
        defined = [f1 for f1 in per_label if f1 is not None]
        macro = sum(defined) / len(defined) if len(defined) == len(per_label) else None
        comparison.append([f"annotators against each other ({e.annotator_sentences} sentences)", *(_f(f1) for f1 in per_label), "", _f(macro)])
    lines += _table(["", *LABELS, "micro", "macro"], comparison)
    if e.annotator_f1:
        lines += ["", "The annotators' row is the human reference: one annotator's labels scored against another's, pooled over every pair."]
    lines += ["", "## Label co-occurrence: true labels (rows) against predicted labels (columns)", ""]
    names = [*LABELS, NONE]
    lines += _table(["true \\ predicted", *names], [[name, *row] for name, row in zip(names, e.co_occurrence.tolist(), strict=True)])
    lines += ["", "Diagonal cells count sentences whose true label was found; off-diagonal ones show which labels get mixed up.", ""]
    if e.learning_curve:
        lines += ["## Learning curve", ""]
        other = {p.fraction: p for p in e.other_curve}
        header = ["share of training articles", "training sentences", "macro-F1", "micro-F1"]
        if other:
            header += [f"macro-F1, {e.other_curve_id}", f"micro-F1, {e.other_curve_id}"]
        lines += _table(
            header,
            [
                [f"{p.fraction:.0%}", p.sentences, _f(p.macro_f1), _f(p.micro_f1)]
                + ([_f(other[p.fraction].macro_f1), _f(other[p.fraction].micro_f1)] if p.fraction in other else [])
                for p in e.learning_curve
            ],
        )
        lines += [
            "",
            (
                "Each point retrains the linear model (n-grams and sentence encoder) on a share of the training articles; the fine-tuned"
                " transformer is not retrained, so the curves show what more annotation buys the part that `annotate train` refits."
            ),
            "A curve still rising at 100 % means more annotation should still pay.", "", f"![learning curve]({LEARNING_PLOT})", "",
        ]  # fmt: skip
    lines += ["## Precision-recall curves", "", "The dot marks each label's chosen decision threshold.", "", f"![precision-recall curves]({PR_PLOT})", ""]
    lines += ["## Reliability", "", "Points on the diagonal mean a predicted probability of p comes true p of the time.", "", f"![reliability]({RELIABILITY_PLOT})", ""]
    return "\n".join(lines)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()


def _grid() -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 7.5), layout="constrained")
    return figure, figure.subplots(2, 2).ravel()


def pr_curve_plot(evaluation: Evaluation) -> bytes:
    """Per-label precision-recall curves with the chosen threshold marked, as PNG bytes."""
    figure, axes = _grid()
    for column, (axis, label) in enumerate(zip(axes, LABELS, strict=True)):
        truth, scores = evaluation.targets[:, column], evaluation.scores[:, column]
        axis.set(title=label, xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02))
        if truth.sum() == 0:
            axis.text(0.5, 0.5, "no positive sentences", ha="center")
            continue
        precision, recall, _ = precision_recall_curve(truth, scores)
        axis.plot(recall, precision, label=f"AP {average_precision_score(truth, scores):.2f}")
        chosen = scores >= evaluation.thresholds[column]
        hits = int((chosen & (truth == 1)).sum())
        at_p = hits / chosen.sum() if chosen.sum() else 1.0
        at_r = hits / truth.sum()
        axis.plot([at_r], [at_p], "o", color="tab:red", label=f"threshold {evaluation.thresholds[column]:.2f}")
        axis.legend(loc="lower left")
    return _png(figure)


def reliability_plot(evaluation: Evaluation, *, bins: int = RELIABILITY_BINS) -> bytes:
    """Per-label reliability diagrams (mean predicted probability against observed frequency), as PNG bytes."""
    figure, axes = _grid()
    edges = np.linspace(0, 1, bins + 1)
    for column, (axis, label) in enumerate(zip(axes, LABELS, strict=True)):
        truth, scores = evaluation.targets[:, column], evaluation.scores[:, column]
        which = np.clip(np.digitize(scores, edges[1:-1]), 0, bins - 1)
        filled = [b for b in range(bins) if (which == b).any()]
        predicted = [scores[which == b].mean() for b in filled]
        observed = [truth[which == b].mean() for b in filled]
        counts = [int((which == b).sum()) for b in filled]
        brier = evaluation.metrics[label].get("brier")
        axis.plot([0, 1], [0, 1], ":", color="grey")
        axis.plot(predicted, observed, "o-")
        for x, y, n in zip(predicted, observed, counts, strict=True):
            axis.annotate(str(n), (x, y), textcoords="offset points", xytext=(3, -10), fontsize=7, color="grey")
        axis.set(title=f"{label} (Brier {brier:.3f})" if brier is not None else label, xlabel="predicted probability", ylabel="observed frequency", xlim=(0, 1), ylim=(0, 1))
    return _png(figure)


def learning_curve_plot(evaluation: Evaluation) -> bytes:
    """Macro- and micro-F1 against training size, with the keyword baseline, as PNG bytes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axis = figure.subplots()
    sizes = [p.sentences for p in evaluation.learning_curve]
    axis.plot(sizes, [p.macro_f1 for p in evaluation.learning_curve], "o-", label="model macro-F1")
    axis.plot(sizes, [p.micro_f1 for p in evaluation.learning_curve], "s--", label="model micro-F1")
    if evaluation.other_curve:
        other_sizes = [p.sentences for p in evaluation.other_curve]
        axis.plot(other_sizes, [p.macro_f1 for p in evaluation.other_curve], "^-", color="tab:red", label=f"macro-F1, {evaluation.other_curve_id}")
    axis.axhline(evaluation.baseline["macro"]["f1"], color="grey", linestyle=":", label=f"keyword baseline macro-F1 ({evaluation.baseline_id})")
    for point in evaluation.learning_curve:
        axis.annotate(f"{point.fraction:.0%}", (point.sentences, point.macro_f1), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    axis.set(xlabel="training sentences", ylabel="F1", ylim=(0, 1), title="Learning curve")
    axis.legend(loc="lower right")
    return _png(figure)


def check_plotting() -> None:
    """Raise a one-line :class:`AnnotateError` when matplotlib (the ``reports`` extra) is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError as e:
        raise AnnotateError("the report's plots need matplotlib; install it with: pip install 'annotate[reports]'") from e


def write_report(evaluation: Evaluation, out_dir: Path) -> list[Path]:
    """Write ``report.md`` and its PNG plots into ``out_dir``, each file atomically; return their paths."""
    check_plotting()
    out_dir = Path(out_dir)
    files: dict[str, bytes] = {PR_PLOT: pr_curve_plot(evaluation), RELIABILITY_PLOT: reliability_plot(evaluation)}
    if evaluation.learning_curve:
        files[LEARNING_PLOT] = learning_curve_plot(evaluation)
    # The report goes last, so a report.md on disk always has its plots beside it.
    files[REPORT_FILE] = render_report(evaluation).encode("utf-8")
    written = []
    for name, data in files.items():
        with atomic_write(out_dir / name, mode="wb") as handle:
            handle.write(data)
        written.append(out_dir / name)
    return written

"""The article-context stage: each sentence's probabilities re-weighed with those of its article.

Annotators label a sentence with its article beside them, and many labels
come from the argument around a sentence: "Nowhere near." is a safety risk in
a paragraph about a chatbot's error rate. The first stage (linear model and
tuned transformer) scores each sentence nearly alone. This stage is one
logistic regression per label over a few numbers per sentence: the log-odds
of each first-stage part, and the first stage's probabilities of the sentence
before and after it, and the mean and maximum over the rest of its paragraph
and of the rest of its article.

An article is a run of consecutive sentences with one ``article_id``; a
paragraph, a run with one ``(article_id, paragraph)``. A sentence without an
article (a Label Studio task judged alone, a record with no ``article_id``)
gets zeros for the context numbers and a 0 in the "has an article" column:
the stage is fitted on every training sentence twice, in its article and
alone, so one set of thresholds serves both.

The fitted stage is a few hundred numbers kept in the model card: no pickle,
and applying it needs numpy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .labels import LABELS
from .schemas import ArticleContext

# (article_id, paragraph) of a sentence, or None for a sentence judged alone.
ArticleKey = tuple[str, int | None] | None
# Each context statistic is one column per label of the first stage's mixed probabilities.
CONTEXT_STATISTICS = ("previous", "next", "paragraph mean", "paragraph max", "article mean", "article max")
# Chosen on the real held-out set: 0.3 and 1 are level there on ~24,000 training sentences, and 0.3 was ahead on ~3,000.
STAGE_C = 0.3
_CLIP = 1e-4


def logit(probabilities: NDArray[Any]) -> NDArray[Any]:
    clipped = np.clip(probabilities, _CLIP, 1.0 - _CLIP)
    return np.log(clipped / (1.0 - clipped))


def features(parts: NDArray[Any], mixed: NDArray[Any], keys: Sequence[ArticleKey] | None) -> NDArray[Any]:
    """The stage's inputs: ``(n, 4 * parts + 4 * 6 + 1)``.

    ``parts`` is ``(k, n, 4)``: each first-stage part's probabilities;
    ``mixed`` is ``(n, 4)``, the first stage's averaged probabilities, which the
    context statistics are taken from; ``keys`` gives each row's article, or
    None (every row alone).
    """
    n = mixed.shape[0]
    own = np.hstack([logit(part) for part in parts]) if n else np.zeros((0, 4 * len(parts)))
    context = np.zeros((n, len(CONTEXT_STATISTICS) * mixed.shape[1]))
    in_article = np.zeros((n, 1))
    if keys is not None and n:
        if len(keys) != n:
            raise ValueError(f"{len(keys)} article keys for {n} sentences")
        has_article = np.array([key is not None for key in keys])
        articles = _runs([key[0] if key is not None else None for key in keys])
        paragraphs = _runs(list(keys))
        previous, following = _neighbour_values(mixed, articles, has_article)
        context = np.hstack([previous, following, *_others(mixed, paragraphs, has_article), *_others(mixed, articles, has_article)])
        in_article[:, 0] = has_article
    return np.hstack([own, context, in_article])


def _runs(values: list[Any]) -> NDArray[np.int64]:
    """A run number per row: it changes where the value changes, and at every None (a row alone)."""
    starts = np.ones(len(values), dtype=bool)
    for index in range(1, len(values)):
        starts[index] = values[index] is None or values[index] != values[index - 1]
    return np.cumsum(starts) - 1


def _neighbour_values(mixed: NDArray[Any], runs: NDArray[np.int64], has_article: NDArray[np.bool_]) -> tuple[NDArray[Any], NDArray[Any]]:
    same = (runs[1:] == runs[:-1]) & has_article[1:] & has_article[:-1]
    previous, following = np.zeros_like(mixed), np.zeros_like(mixed)
    previous[1:][same] = mixed[:-1][same]
    following[:-1][same] = mixed[1:][same]
    return previous, following


def _others(mixed: NDArray[Any], runs: NDArray[np.int64], has_article: NDArray[np.bool_]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Mean and maximum of the other rows of each row's run (0 for a run of one, or a row alone)."""
    count = np.bincount(runs)[runs][:, None].astype(float)
    totals = np.zeros((runs.max() + 1, mixed.shape[1]))
    np.add.at(totals, runs, mixed)
    mean = np.where(count > 1, (totals[runs] - mixed) / np.maximum(count - 1, 1), 0.0)
    # The maximum without the row itself: the run's largest value, or its second largest for the row holding the largest.
    best, second, best_row = _two_largest(mixed, runs)
    rows = np.arange(len(runs))[:, None]
    maximum = np.where(best_row[runs] == rows, second[runs], best[runs])
    alone = ~has_article[:, None] | (count <= 1)
    return np.where(alone, 0.0, mean), np.where(alone, 0.0, maximum)


def _two_largest(values: NDArray[Any], runs: NDArray[np.int64]) -> tuple[NDArray[Any], NDArray[Any], NDArray[np.int64]]:
    groups, columns = runs.max() + 1, values.shape[1]
    best, second = np.zeros((groups, columns)), np.zeros((groups, columns))
    best_row = np.full((groups, columns), -1)
    for column in range(columns):
        # Rows sorted by run, then value: each run's last row holds its largest value, the one before it the second.
        order = np.lexsort((values[:, column], runs))
        sorted_runs = runs[order]
        last = np.flatnonzero(np.append(sorted_runs[1:] != sorted_runs[:-1], True))
        best[sorted_runs[last], column] = values[order[last], column]
        best_row[sorted_runs[last], column] = order[last]
        has_second = (last > 0) & (sorted_runs[np.maximum(last - 1, 0)] == sorted_runs[last])
        second[sorted_runs[last[has_second]], column] = values[order[last[has_second] - 1], column]
    return best, second, best_row


def apply(stage: ArticleContext, parts: NDArray[Any], mixed: NDArray[Any], keys: Sequence[ArticleKey] | None) -> NDArray[Any]:
    """The stage's probabilities, ``(n, 4)``."""
    coefficients = np.array([stage.coefficients[label] for label in LABELS])
    intercepts = np.array([stage.intercepts[label] for label in LABELS])
    return np.asarray(1.0 / (1.0 + np.exp(-(features(parts, mixed, keys) @ coefficients.T + intercepts))))


def feature_count(parts: int) -> int:
    """How many numbers per sentence the stage reads with ``parts`` first-stage parts."""
    return len(LABELS) * (parts + len(CONTEXT_STATISTICS)) + 1


def fit(
    parts: NDArray[Any],
    mixed: NDArray[Any],
    targets: NDArray[Any],
    keys: Sequence[ArticleKey],
    sample_weight: NDArray[Any] | None = None,
) -> ArticleContext:
    """One logistic regression per label, on every row in its article and again alone."""
    from sklearn.linear_model import LogisticRegression

    in_article, alone = features(parts, mixed, keys), features(parts, mixed, None)
    matrix = np.vstack([in_article, alone])
    weights = None if sample_weight is None else np.concatenate([sample_weight, sample_weight])
    coefficients, intercepts = {}, {}
    for column, label in enumerate(LABELS):
        target = np.concatenate([targets[:, column], targets[:, column]])
        if target.min() == target.max():
            # A fold of a small label set can lack a label's positives (or negatives): predict its rate.
            coefficients[label] = [0.0] * matrix.shape[1]
            intercepts[label] = float(logit(np.array(target.mean())))
            continue
        regression = LogisticRegression(C=STAGE_C, max_iter=5000).fit(matrix, target, sample_weight=weights)
        coefficients[label] = [float(value) for value in regression.coef_[0]]
        intercepts[label] = float(regression.intercept_[0])
    return ArticleContext(parts=len(parts), coefficients=coefficients, intercepts=intercepts)


def out_of_fold(
    parts: NDArray[Any],
    mixed: NDArray[Any],
    targets: NDArray[Any],
    keys: Sequence[ArticleKey],
    groups: Sequence[str],
    sample_weight: NDArray[Any] | None = None,
    folds: int = 5,
) -> NDArray[Any]:
    """Each row's stage probabilities (in its article) from a stage fitted on the other articles."""
    from sklearn.model_selection import GroupKFold

    scores = np.zeros(targets.shape, dtype=float)
    for train_index, test_index in GroupKFold(n_splits=min(folds, len(set(groups)))).split(mixed, targets, groups):
        stage = fit(
            parts[:, train_index], mixed[train_index], targets[train_index], [keys[i] for i in train_index],
            None if sample_weight is None else sample_weight[train_index],
        )  # fmt: skip
        scores[test_index] = apply(stage, parts[:, test_index], mixed[test_index], [keys[i] for i in test_index])
    return scores

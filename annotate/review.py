"""Label quality: agreement between annotators, and labels that are probably wrong.

Agreement uses every annotator's choice kept in ``LabeledSentence.annotations``:
Krippendorff's alpha per label over sentences that two or more annotators
saw, and Cohen's kappa per label for each pair of annotators on the
sentences both of them labelled. Both are computed here (nominal data, a few
lines each) so the toolkit needs no extra dependency.

Likely-wrong labels follow confident learning (Northcutt et al., 2021), one
label at a time: out-of-fold probabilities from models that never saw the
sentence's article give each class a confidence threshold (the mean
probability of that class over the sentences labelled with it). A sentence is
flagged when the probability of the class it was *not* given reaches that
class's threshold and beats the class it was given; flagged sentences are
ranked by the margin between the two.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import InputError
from .labels import LABELS
from .schemas import LabeledSentence, Recipe, Sentence
from .train import CV_FOLDS, check_trainable, label_matrix, neighbours_of, out_of_fold_scores


@dataclass(frozen=True)
class LabelAgreement:
    """Agreement on one label; each figure is None when undefined.

    ``alpha`` is Krippendorff's alpha (None without variation). ``pairwise_f1``
    scores annotators against each other as a model is scored against the
    labels (pooled over every pair on every shared sentence): the human
    reference that a model's F1 can be read against.
    """

    label: str
    sentences: int
    alpha: float | None
    pairwise_f1: float | None


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa per label for two annotators on the sentences both labelled."""

    first: str
    second: str
    sentences: int
    kappa: dict[str, float | None]


@dataclass(frozen=True)
class Agreement:
    """Inter-annotator agreement over a label set."""

    sentences: int
    annotators: list[str]
    labels: list[LabelAgreement]
    pairs: list[PairAgreement]


@dataclass(frozen=True)
class LabelIssue:
    """One label of a sentence that the out-of-fold model confidently contradicts."""

    label: str
    given: int
    probability: float


@dataclass(frozen=True)
class Suspect:
    """A sentence with at least one likely-wrong label; ``margin`` ranks them (higher = surer)."""

    row: LabeledSentence
    issues: list[LabelIssue]
    margin: float


def krippendorff_alpha(units: Sequence[Sequence[int]]) -> float | None:
    """Krippendorff's alpha for nominal values; each unit lists the values its coders gave.

    Units with fewer than two values cannot be paired and are ignored. Returns
    None when alpha is undefined: no pairable unit, or a single value throughout.
    """
    pairable = [list(unit) for unit in units if len(unit) >= 2]
    values = sorted({value for unit in pairable for value in unit})
    if not pairable or len(values) < 2:
        return None
    index = {value: i for i, value in enumerate(values)}
    coincidences = np.zeros((len(values), len(values)))
    for unit in pairable:
        counts = np.zeros(len(values))
        for value in unit:
            counts[index[value]] += 1
        coincidences += (np.outer(counts, counts) - np.diag(counts)) / (len(unit) - 1)
    totals = coincidences.sum(axis=1)
    n = totals.sum()
    observed = coincidences.sum() - np.trace(coincidences)
    expected = n * n - (totals**2).sum()
    return float(1.0 - (n - 1) * observed / expected)


def cohen_kappa(first: Sequence[int], second: Sequence[int]) -> float | None:
    """Cohen's kappa for two binary raters; None when chance agreement is total (both constant and equal)."""
    a = np.asarray(first, dtype=float)
    b = np.asarray(second, dtype=float)
    if len(a) == 0:
        return None
    observed = float((a == b).mean())
    chance = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def pairwise_f1(units: Sequence[Sequence[int]]) -> float | None:
    """F1 of annotators against each other: ``2 * both / (first + second)`` summed over every pair in every unit.

    F1 is symmetric in the pair, so which annotator plays "truth" does not
    matter; None when no pair marked the label at all.
    """
    both = marked = 0
    for unit in units:
        for first, second in combinations(unit, 2):
            both += first & second
            marked += first + second
    return 2 * both / marked if marked else None


def agreement(rows: Sequence[LabeledSentence]) -> Agreement:
    """Alpha and pairwise F1 per label and kappa per annotator pair, from each row's ``annotations``.

    Tie-break votes (``tie_break``), cast only where two annotators disagreed,
    are left out: counted in, they would make agreement look lower than it is.
    """
    independent = [[choice for choice in row.annotations if not choice.tie_break] for row in rows]
    shared = [choices for choices in independent if len({choice.annotator for choice in choices}) >= 2]
    votes = [{choice.annotator: set(choice.labels) for choice in choices} for choices in shared]
    annotators = sorted({name for vote in votes for name in vote})
    per_label = []
    for label in LABELS:
        units = [[int(label in chosen) for chosen in vote.values()] for vote in votes]
        per_label.append(LabelAgreement(label=label, sentences=len(votes), alpha=krippendorff_alpha(units), pairwise_f1=pairwise_f1(units)))
    together: dict[tuple[str, str], list[dict[str, set[str]]]] = defaultdict(list)
    for vote in votes:
        for pair in combinations(sorted(vote), 2):
            together[pair].append(vote)
    pairs = [
        PairAgreement(
            first=first,
            second=second,
            sentences=len(seen),
            kappa={label: cohen_kappa([int(label in v[first]) for v in seen], [int(label in v[second]) for v in seen]) for label in LABELS},
        )
        for (first, second), seen in sorted(together.items())
    ]
    return Agreement(sentences=len(shared), annotators=annotators, labels=per_label, pairs=pairs)


def likely_label_errors(
    rows: Sequence[LabeledSentence], *, scores: NDArray[Any] | None = None, recipe: Recipe | None = None, folds: int = CV_FOLDS
) -> list[Suspect]:
    """Sentences whose labels the out-of-fold model confidently contradicts, most suspicious first.

    ``scores`` are out-of-fold probabilities (one row per sentence, columns
    in :data:`LABELS` order); by default they are computed with grouped
    ``folds``-fold cross-validation of ``recipe`` (default: the default
    model's), so no model judges an article it saw.
    """
    targets = label_matrix(rows)
    if scores is None:
        check_trainable(rows)
        scores = out_of_fold_scores(
            [r.text for r in rows], targets, [r.article_id for r in rows], recipe=recipe or Recipe(), folds=folds, neighbours=neighbours_of(rows)
        )
    scores = np.asarray(scores, dtype=float)
    if scores.shape != targets.shape:
        raise InputError(f"expected scores of shape {targets.shape}, got {scores.shape}")
    issues: dict[int, list[LabelIssue]] = defaultdict(list)
    margins: dict[int, float] = defaultdict(float)
    for column, label in enumerate(LABELS):
        positive = scores[:, column]
        given = targets[:, column]
        # Per-class thresholds: the mean probability of a class over the sentences labelled with it.
        threshold_positive = positive[given == 1].mean() if (given == 1).any() else 1.0
        threshold_negative = (1 - positive[given == 0]).mean() if (given == 0).any() else 1.0
        doubtful_positive = (given == 1) & (1 - positive >= threshold_negative) & (1 - positive > positive)
        doubtful_negative = (given == 0) & (positive >= threshold_positive) & (positive > 1 - positive)
        for row in np.flatnonzero(doubtful_positive | doubtful_negative):
            issues[int(row)].append(LabelIssue(label=label, given=int(given[row]), probability=round(float(positive[row]), 4)))
            margins[int(row)] = max(margins[int(row)], abs(2 * float(positive[row]) - 1))
    return [
        Suspect(row=rows[index], issues=issues[index], margin=round(margin, 4))
        for index, margin in sorted(margins.items(), key=lambda item: (-item[1], item[0]))
    ]


def review_batch(suspects: Sequence[Suspect], rows: Sequence[LabeledSentence]) -> list[Sentence]:
    """The suspects as sentences (the ``Sentence`` contract) for ``annotate studio push``.

    A label set keeps no neighbouring sentences, so ``prev``/``next`` stay
    empty; ``index`` is the sentence's position within its article's rows.
    """
    positions: dict[str, int] = {}
    seen_in_article: Counter[str] = Counter()
    for row in rows:
        positions[row.sentence_id] = seen_in_article[row.article_id]
        seen_in_article[row.article_id] += 1
    return [
        Sentence(
            article_id=s.row.article_id,
            sentence_id=s.row.sentence_id,
            paragraph=s.row.paragraph,
            index=positions.get(s.row.sentence_id, 0),
            text=s.row.text,
            lang=s.row.lang,
            title=s.row.title,
            source=s.row.source,
            prev="",
            next="",
        )
        for s in suspects
    ]

"""Active learning: pick the sentences whose labels would teach the model most.

``uncertainty`` takes the sentences whose score for some label sits closest to
that label's decision threshold. ``diverse`` takes a larger pool of uncertain
sentences and picks from it greedily by maximal marginal relevance: uncertain,
but unlike the sentences already picked, so a batch does not spend the
annotators' time on ten rewordings of one press release.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .classify import BATCH_SIZE, Model, scored_records
from .errors import InputError
from .schemas import Sentence

STRATEGIES = ("uncertainty", "diverse")
# Diverse selection picks from this many times n of the most uncertain sentences.
DIVERSE_POOL = 10
# Weight of uncertainty against dissimilarity in the diverse pick (1 = uncertainty only).
UNCERTAINTY_WEIGHT = 0.5


@dataclass(frozen=True)
class Candidate:
    """A sentence proposed for annotation, with how unsure the model is of it (1 = a coin toss)."""

    sentence: Sentence
    uncertainty: float


@dataclass(frozen=True)
class Selection:
    """The chosen sentences, best first, and what was passed over."""

    chosen: list[Candidate]
    seen: int
    skipped_labelled: int
    skipped_duplicates: int


def uncertainty(scores: NDArray[Any], thresholds: NDArray[Any]) -> NDArray[Any]:
    """Per sentence, how close its least clear label is to its decision threshold.

    1 when a score equals its label's threshold, falling linearly to 0 at a
    certain 0 or 1; the maximum over labels. Thresholds (not 0.5) are where the
    model's decisions flip, so that is where a label helps most.
    """
    scores = np.asarray(scores, dtype=float)
    below = scores < thresholds
    distance = np.where(below, (thresholds - scores) / thresholds, (scores - thresholds) / (1.0 - thresholds))
    return np.asarray((1.0 - distance).max(axis=1))


def _normalised(text: str) -> str:
    return " ".join(text.casefold().split())


def _unlabelled(sentences: Iterable[Sentence], skip_ids: Collection[str], counts: dict[str, int]) -> Iterator[Sentence]:
    seen_ids: set[str] = set()
    seen_texts: set[int] = set()
    for sentence in sentences:
        counts["seen"] += 1
        if sentence.sentence_id in skip_ids:
            counts["labelled"] += 1
            continue
        key = hash(_normalised(sentence.text))
        if sentence.sentence_id in seen_ids or key in seen_texts:
            counts["duplicates"] += 1
            continue
        seen_ids.add(sentence.sentence_id)
        seen_texts.add(key)
        yield sentence


def most_uncertain(
    sentences: Iterable[Sentence], *, model: Model, n: int, skip_ids: Collection[str] = frozenset(), batch_size: int = BATCH_SIZE
) -> Selection:
    """The ``n`` sentences with the highest :func:`uncertainty`, streaming the input in batches.

    Sentences whose ``sentence_id`` is in ``skip_ids`` (already labelled), and
    repeats of an id or of a text, are passed over. Ties keep input order.
    """
    if n < 1:
        raise InputError(f"the number of sentences to select must be at least 1, got {n}")
    counts = {"seen": 0, "labelled": 0, "duplicates": 0}
    order = count()
    heap: list[tuple[float, int, Sentence]] = []  # the n best so far; heap[0] is the weakest of them
    # Each sentence is judged in its article, as classify judges it; the records carry the sentence along.
    records = (
        {"text": s.text, "prev": s.prev, "next": s.next, "article_id": s.article_id, "paragraph": s.paragraph, "sentence": s}
        for s in _unlabelled(sentences, skip_ids, counts)
    )
    for block, scores in scored_records(records, model=model, batch_size=batch_size):
        for record, value in zip(block, uncertainty(scores, model.thresholds), strict=True):
            item = (float(value), -next(order), record["sentence"])
            if len(heap) < n:
                heapq.heappush(heap, item)
            elif item[:2] > heap[0][:2]:
                heapq.heapreplace(heap, item)
    ranked = sorted(heap, key=lambda item: item[:2], reverse=True)
    return Selection(
        chosen=[Candidate(sentence=s, uncertainty=round(value, 4)) for value, _, s in ranked],
        seen=counts["seen"],
        skipped_labelled=counts["labelled"],
        skipped_duplicates=counts["duplicates"],
    )


def _vectors(texts: Sequence[str]) -> object:
    """L2-normalised TF-IDF rows of word 1-2-grams, IDF from ``texts`` themselves."""
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

    from .train import N_FEATURES, TOKEN_PATTERN

    hashed = HashingVectorizer(token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), n_features=N_FEATURES, alternate_sign=False, norm=None).transform(texts)
    return TfidfTransformer(sublinear_tf=True).fit_transform(hashed)


def diverse(pool: Sequence[Candidate], n: int, *, weight: float = UNCERTAINTY_WEIGHT) -> list[Candidate]:
    """Greedy maximal marginal relevance over ``pool``.

    Each pick maximises ``weight * uncertainty - (1 - weight) * similarity``,
    where similarity is the cosine similarity to the closest sentence already
    picked; the first pick is the most uncertain.
    """
    if not pool:
        return []
    vectors = _vectors([c.sentence.text for c in pool])
    values = np.array([c.uncertainty for c in pool])
    closest = np.zeros(len(pool))
    taken = np.zeros(len(pool), dtype=bool)
    chosen: list[Candidate] = []
    for _ in range(min(n, len(pool))):
        gain = np.where(taken, -np.inf, weight * values - (1 - weight) * closest)
        best = int(np.argmax(gain))
        taken[best] = True
        chosen.append(pool[best])
        similarity = np.asarray((vectors @ vectors[best].T).todense()).ravel()  # type: ignore[index]
        closest = np.maximum(closest, similarity)
    return chosen


def select(
    sentences: Iterable[Sentence],
    *,
    model: Model,
    n: int,
    strategy: str = "uncertainty",
    skip_ids: Collection[str] = frozenset(),
    batch_size: int = BATCH_SIZE,
) -> Selection:
    """The next ``n`` sentences to annotate, by ``strategy`` (``uncertainty`` or ``diverse``)."""
    if strategy not in STRATEGIES:
        raise InputError(f"unknown selection strategy {strategy!r} (expected {' or '.join(STRATEGIES)})")
    if strategy == "uncertainty":
        return most_uncertain(sentences, model=model, n=n, skip_ids=skip_ids, batch_size=batch_size)
    pool = most_uncertain(sentences, model=model, n=n * DIVERSE_POOL, skip_ids=skip_ids, batch_size=batch_size)
    return Selection(chosen=diverse(pool.chosen, n), seen=pool.seen, skipped_labelled=pool.skipped_labelled, skipped_duplicates=pool.skipped_duplicates)

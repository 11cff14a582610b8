from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotate.active import DIVERSE_POOL, Candidate, diverse, most_uncertain, select, uncertainty
from annotate.classify import Model, load_model
from annotate.errors import InputError
from annotate.labels import LABELS
from annotate.schemas import Sentence

THRESHOLDS = np.array([0.4, 0.3, 0.5, 0.6])


class FixedScores:
    """A stand-in pipeline: each text's scores are given up front."""

    def __init__(self, scores: dict[str, list[float]]) -> None:
        self.scores = scores

    def predict_proba(self, texts: list[str], neighbours: list[tuple[str, str]] | None = None) -> np.ndarray:
        return np.array([self.scores[text] for text in texts])


def fixed_model(scores: dict[str, list[float]], real_model: Model) -> Model:
    card = real_model.card.model_copy(update={"thresholds": dict(zip(LABELS, THRESHOLDS.tolist(), strict=True)), "article_context": None})
    return Model(pipeline=FixedScores(scores), card=card, path=real_model.path)


def sentence(text: str, number: int) -> Sentence:
    return Sentence(article_id="a", sentence_id=f"a-{number}", paragraph=1, index=number, text=text, lang="en")


@pytest.fixture(scope="module")
def real_model(small_model: Path) -> Model:
    return load_model(small_model)


def test_uncertainty_is_one_at_a_threshold_and_zero_at_certainty() -> None:
    scores = np.array(
        [
            [0.4, 0.0, 0.0, 0.0],  # at regulatory_barrier's threshold
            [0.0, 0.0, 0.0, 0.0],  # certain: nothing
            [1.0, 1.0, 1.0, 1.0],  # certain: everything
            [0.2, 0.0, 0.0, 0.0],  # half way from 0 to the 0.4 threshold
            [0.0, 0.0, 0.75, 1.0],  # half way from the 0.5 threshold to 1
        ]
    )
    np.testing.assert_allclose(uncertainty(scores, THRESHOLDS), [1.0, 0.0, 0.0, 0.5, 0.5])


def test_unsure_sentences_rank_above_sure_ones(real_model: Model) -> None:
    scores = {
        "sure no": [0.0, 0.0, 0.0, 0.0],
        "coin toss": [0.02, 0.31, 0.0, 0.0],
        "sure yes": [0.99, 0.98, 0.97, 0.99],
        "fairly unsure": [0.5, 0.0, 0.0, 0.0],
    }
    model = fixed_model(scores, real_model)
    sentences = [sentence(text, i) for i, text in enumerate(scores)]
    chosen = most_uncertain(sentences, model=model, n=4).chosen
    assert [c.sentence.text for c in chosen] == ["coin toss", "fairly unsure", "sure yes", "sure no"]
    assert chosen[0].uncertainty > chosen[-1].uncertainty
    assert [c.sentence.text for c in most_uncertain(sentences, model=model, n=1).chosen] == ["coin toss"]


def test_streaming_in_small_batches_gives_the_same_ranking(real_model: Model) -> None:
    rng = np.random.default_rng(3)
    scores = {f"s{i}": rng.random(4).tolist() for i in range(50)}
    model = fixed_model(scores, real_model)
    sentences = [sentence(text, i) for i, text in enumerate(scores)]
    whole = most_uncertain(sentences, model=model, n=7, batch_size=1000).chosen
    batched = most_uncertain(iter(sentences), model=model, n=7, batch_size=3).chosen
    assert whole == batched
    expected = np.argsort(-uncertainty(np.array(list(scores.values())), THRESHOLDS), kind="stable")[:7]
    assert [c.sentence.text for c in whole] == [f"s{i}" for i in expected]


def test_labelled_and_repeated_sentences_are_skipped(real_model: Model) -> None:
    scores = {"labelled already": [0.4, 0, 0, 0], "Same text": [0.41, 0, 0, 0], "other": [0.1, 0, 0, 0]}
    model = fixed_model({**scores, "same   TEXT": [0.41, 0, 0, 0]}, real_model)
    sentences = [
        sentence("labelled already", 0),
        sentence("Same text", 1),
        sentence("same   TEXT", 2),  # the same words: a repeat
        sentence("Same text", 1),  # the same id again
        sentence("other", 3),
    ]
    selection = most_uncertain(sentences, model=model, n=10, skip_ids={"a-0"})
    assert [c.sentence.sentence_id for c in selection.chosen] == ["a-1", "a-3"]
    assert (selection.seen, selection.skipped_labelled, selection.skipped_duplicates) == (5, 1, 2)


def test_diverse_passes_over_near_duplicates(real_model: Model) -> None:
    texts = {
        "The regulator delayed approval of the imaging software.": [0.4, 0, 0, 0],
        "The regulator delayed approval of the imaging software again.": [0.39, 0, 0, 0],
        "Investors poured money into a chatbot start-up.": [0.0, 0.25, 0, 0],
    }
    model = fixed_model(texts, real_model)
    sentences = [sentence(text, i) for i, text in enumerate(texts)]
    by_uncertainty = select(sentences, model=model, n=2, strategy="uncertainty").chosen
    by_diversity = select(sentences, model=model, n=2, strategy="diverse").chosen
    assert [c.sentence.sentence_id for c in by_uncertainty] == ["a-0", "a-1"]
    assert [c.sentence.sentence_id for c in by_diversity] == ["a-0", "a-2"]


def test_diverse_with_weight_one_is_plain_uncertainty() -> None:
    pool = [Candidate(sentence(f"text {i} words", i), uncertainty=u) for i, u in enumerate([0.9, 0.8, 0.7])]
    assert diverse(pool, 2, weight=1.0) == pool[:2]
    assert diverse([], 3) == []


def test_diverse_draws_from_a_larger_pool(real_model: Model) -> None:
    scores = {f"sentence number {i}": [0.4 - i / 1000, 0, 0, 0] for i in range(3 * DIVERSE_POOL)}
    model = fixed_model(scores, real_model)
    chosen = select([sentence(t, i) for i, t in enumerate(scores)], model=model, n=3, strategy="diverse").chosen
    assert len(chosen) == 3 and len({c.sentence.sentence_id for c in chosen}) == 3


def test_bad_arguments(real_model: Model) -> None:
    with pytest.raises(InputError, match="unknown selection strategy 'random' \\(expected uncertainty or diverse\\)"):
        select([], model=real_model, n=1, strategy="random")
    with pytest.raises(InputError, match="the number of sentences to select must be at least 1, got 0"):
        select([], model=real_model, n=0)

from __future__ import annotations

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from annotate.errors import InputError
from annotate.labels import LABELS
from annotate.review import agreement, cohen_kappa, krippendorff_alpha, likely_label_errors, pairwise_f1, review_batch
from annotate.schemas import AnnotatorChoice, LabeledSentence, Sentence

from .conftest import starter_articles


def planted(rows: list[LabeledSentence]) -> tuple[list[LabeledSentence], LabeledSentence]:
    """``rows`` with one plainly financing sentence relabelled as not financing."""
    target = next(r for r in rows if r.labels == ["financing"] and "Series" in r.text and "million" in r.text)
    wrong = target.model_copy(update={"financing": 0})
    return [wrong if r.sentence_id == target.sentence_id else r for r in rows], wrong


@pytest.fixture(scope="module")
def rows() -> list[LabeledSentence]:
    return starter_articles(2)


@pytest.mark.parametrize("seed", range(6))
def test_alpha_matches_the_krippendorff_package(seed: int) -> None:
    rng = np.random.default_rng(seed)
    coders, units = 4, 40
    data = rng.choice([0.0, 1.0], size=(coders, units), p=[0.6, 0.4])
    # Coders mostly agree with the first one, and some values are missing.
    data = np.where(rng.random((coders, units)) < 0.7, data[0], data)
    data[rng.random((coders, units)) < 0.3] = np.nan
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="nominal")
    units_values = [[int(v) for v in data[:, u] if not np.isnan(v)] for u in range(units)]
    assert krippendorff_alpha(units_values) == pytest.approx(expected, abs=1e-12)


def test_alpha_edge_cases() -> None:
    assert krippendorff_alpha([[1, 1], [0, 0], [1, 1, 1]]) == pytest.approx(1.0)
    assert krippendorff_alpha([[1, 1], [1, 1]]) is None  # one value throughout
    assert krippendorff_alpha([[1], [0]]) is None  # nothing to pair
    assert krippendorff_alpha([[0, 1], [1, 0]]) < 0


@pytest.mark.parametrize("seed", range(4))
def test_kappa_matches_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 2, 30)
    second = np.where(rng.random(30) < 0.8, first, 1 - first)
    assert cohen_kappa(first.tolist(), second.tolist()) == pytest.approx(cohen_kappa_score(first, second))


def test_kappa_undefined_when_both_raters_never_vary() -> None:
    assert cohen_kappa([0, 0, 0], [0, 0, 0]) is None
    assert cohen_kappa([], []) is None


def labelled(sentence_id: str, votes: dict[str, list[str]]) -> LabeledSentence:
    return LabeledSentence(
        sentence_id=sentence_id, article_id="a", text=f"text {sentence_id}", lang="en",
        annotations=[AnnotatorChoice(annotator=name, labels=labels) for name, labels in votes.items()],
        decision="majority", **{label: 0 for label in LABELS},
    )


def test_agreement_per_label_and_per_pair() -> None:
    rows = [
        labelled("1", {"ann": ["financing"], "bob": ["financing"], "cy": ["financing"]}),
        labelled("2", {"ann": ["safety_risk"], "bob": []}),
        labelled("3", {"ann": [], "bob": []}),
        labelled("4", {"bob": ["financing"], "cy": []}),
        labelled("5", {"ann": ["financing"]}),  # one annotator: not counted
    ]
    result = agreement(rows)
    assert result.sentences == 4
    assert result.annotators == ["ann", "bob", "cy"]
    by_label = {a.label: a for a in result.labels}
    assert by_label["financing"].alpha == pytest.approx(krippendorff_alpha([[1, 1, 1], [0, 0], [0, 0], [1, 0]]))
    assert by_label["regulatory_barrier"].alpha is None
    pairs = {(p.first, p.second): p for p in result.pairs}
    assert sorted(pairs) == [("ann", "bob"), ("ann", "cy"), ("bob", "cy")]
    assert pairs[("ann", "bob")].sentences == 3
    assert pairs[("ann", "bob")].kappa["financing"] == pytest.approx(1.0)
    assert pairs[("ann", "bob")].kappa["safety_risk"] == pytest.approx(cohen_kappa_score([0, 1, 0], [0, 0, 0]))
    assert pairs[("bob", "cy")].kappa["financing"] == pytest.approx(cohen_kappa_score([1, 1], [1, 0]))


@pytest.mark.parametrize("seed", range(4))
def test_pairwise_f1_of_two_annotators_is_their_f1_score(seed: int) -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, 2, 60), rng.integers(0, 2, 60)
    assert pairwise_f1(list(zip(first, second, strict=True))) == pytest.approx(f1_score(first, second))
    assert pairwise_f1(list(zip(second, first, strict=True))) == pytest.approx(f1_score(first, second))


def test_pairwise_f1_pools_every_pair_of_three_annotators() -> None:
    # Pairs (1,1), (1,0), (1,0): one shared mark out of four marks.
    assert pairwise_f1([[1, 1, 0]]) == 0.5
    assert pairwise_f1([[0, 0], [0, 0, 0]]) is None


def test_agreement_without_shared_sentences(rows) -> None:
    result = agreement([row.model_copy(update={"annotations": row.annotations[:1]}) for row in rows])
    assert (result.sentences, result.pairs) == (0, [])


def test_agreement_on_the_starter_set_covers_every_sentence(rows) -> None:
    result = agreement(rows)
    assert result.sentences == len(rows)
    assert {pair.first for pair in result.pairs} | {pair.second for pair in result.pairs} >= {"starter-author", "review-1", "review-3"}


def test_a_planted_wrong_label_is_flagged(rows) -> None:
    noisy, wrong = planted(rows)
    suspects = likely_label_errors(noisy)
    flagged = {s.row.sentence_id: s for s in suspects}
    assert wrong.sentence_id in flagged
    [issue] = [i for i in flagged[wrong.sentence_id].issues if i.label == "financing"]
    assert issue.given == 0 and issue.probability > 0.5
    # Among the most suspicious tenth of the set, not just somewhere in the list.
    rank = [s.row.sentence_id for s in suspects].index(wrong.sentence_id)
    assert rank < len(rows) * 0.1
    assert [s.margin for s in suspects] == sorted((s.margin for s in suspects), reverse=True)


def test_confident_learning_rule_on_given_scores() -> None:
    rows = [labelled(str(i), {}) for i in range(6)]
    rows = [r.model_copy(update={"financing": given}) for r, given in zip(rows, [1, 1, 1, 0, 0, 0], strict=True)]
    scores = np.zeros((6, 4))
    # Label 1 given: mean p = (0.9+0.8+0.1)/3 = 0.6; label 0 given: mean (1-p) = (0.9+0.95+0.2)/3 = 0.683.
    scores[:, 1] = [0.9, 0.8, 0.1, 0.1, 0.05, 0.8]
    suspects = likely_label_errors(rows, scores=scores)
    assert [(s.row.sentence_id, s.issues[0].given, s.margin) for s in suspects] == [("2", 1, 0.8), ("5", 0, 0.6)]


def test_scores_of_the_wrong_shape_are_refused(rows) -> None:
    with pytest.raises(InputError, match=r"expected scores of shape \(3, 4\), got \(3, 2\)"):
        likely_label_errors(rows[:3], scores=np.zeros((3, 2)))


def test_review_batch_is_sentences_for_studio_push(rows) -> None:
    noisy, _ = planted(rows)
    suspects = likely_label_errors(noisy)[:5]
    batch = review_batch(suspects, noisy)
    assert [s.sentence_id for s in batch] == [s.row.sentence_id for s in suspects]
    for item, suspect in zip(batch, suspects, strict=True):
        assert isinstance(item, Sentence)
        assert (item.text, item.article_id, item.lang, item.paragraph) == (suspect.row.text, suspect.row.article_id, suspect.row.lang, suspect.row.paragraph)
        same_article = [r.sentence_id for r in noisy if r.article_id == item.article_id]
        assert item.index == same_article.index(item.sentence_id)
        Sentence.model_validate(item.model_dump())


def test_tie_break_votes_decide_but_do_not_count_as_agreement() -> None:
    """A third annotator asked only where two disagreed would drag agreement down if counted."""
    agreed = [labelled(f"s{n}", {"ann": ["financing"], "bob": ["financing"]}) for n in range(4)]
    split = labelled("s9", {"ann": ["financing"], "bob": []})
    tie = AnnotatorChoice(annotator="carol", labels=["financing"], tie_break=True)
    split = split.model_copy(update={"annotations": [*split.annotations, tie]})
    result = agreement([*agreed, split])
    financing = next(a for a in result.labels if a.label == "financing")
    assert result.annotators == ["ann", "bob"] and financing.sentences == 5
    assert financing.pairwise_f1 == pytest.approx(2 * 4 / (2 * 4 + 1))
    counted = agreement([*agreed, split.model_copy(update={"annotations": [*split.annotations[:2], tie.model_copy(update={"tie_break": False})]})])
    assert next(a for a in counted.labels if a.label == "financing").pairwise_f1 < financing.pairwise_f1

"""The article-context stage: its inputs, its fit, and that batching never changes what it gives."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from annotate import article_context
from annotate._io import line_ranges
from annotate.classify import classify_records, load_model
from annotate.errors import ModelError
from annotate.labels import LABELS
from annotate.scale import classify_sentence_records, plan_partitions
from annotate.schemas import ArticleContext

from .conftest import starter_articles

PREVIOUS, NEXT, PARAGRAPH_MEAN, PARAGRAPH_MAX, ARTICLE_MEAN, ARTICLE_MAX = range(6)


def context_column(matrix: np.ndarray, parts: int, statistic: int, label: int = 0) -> np.ndarray:
    return matrix[:, 4 * parts + 4 * statistic + label]


def test_context_numbers_come_from_the_other_sentences_of_the_paragraph_and_article() -> None:
    mixed = np.zeros((6, 4))
    mixed[:, 0] = [0.1, 0.9, 0.3, 0.5, 0.7, 0.2]
    keys = [("a", 1), ("a", 1), ("a", 2), ("b", 1), ("b", 1), None]
    matrix = article_context.features(mixed[None], mixed, keys)

    assert context_column(matrix, 1, PREVIOUS).tolist() == [0.0, 0.1, 0.9, 0.0, 0.5, 0.0]
    assert context_column(matrix, 1, NEXT).tolist() == [0.9, 0.3, 0.0, 0.7, 0.0, 0.0]
    assert context_column(matrix, 1, PARAGRAPH_MEAN) == pytest.approx([0.9, 0.1, 0.0, 0.7, 0.5, 0.0])
    assert context_column(matrix, 1, PARAGRAPH_MAX).tolist() == [0.9, 0.1, 0.0, 0.7, 0.5, 0.0]
    # The row holding its article's largest value gets the second largest.
    assert context_column(matrix, 1, ARTICLE_MEAN) == pytest.approx([0.6, 0.2, 0.5, 0.7, 0.5, 0.0])
    assert context_column(matrix, 1, ARTICLE_MAX).tolist() == [0.9, 0.3, 0.9, 0.7, 0.5, 0.0]
    assert matrix[:, -1].tolist() == [1, 1, 1, 1, 1, 0]
    assert matrix[:, 0] == pytest.approx(article_context.logit(mixed[:, 0]))


def test_an_article_is_a_run_of_consecutive_sentences() -> None:
    mixed = np.full((3, 4), 0.5)
    mixed[1] = 0.9
    matrix = article_context.features(mixed[None], mixed, [("a", 1), ("b", 1), ("a", 1)])
    # The two "a" rows are apart: each is an article of its own, with nothing beside it.
    assert context_column(matrix, 1, ARTICLE_MAX).tolist() == [0.0, 0.0, 0.0]
    assert context_column(matrix, 1, PREVIOUS).tolist() == [0.0, 0.0, 0.0]


def test_sentences_judged_alone_have_no_context() -> None:
    mixed = np.random.default_rng(0).random((5, 4))
    matrix = article_context.features(np.stack([mixed, mixed]), mixed, None)
    assert matrix.shape == (5, 8 + 24 + 1)
    assert not matrix[:, 8:].any()


def test_fit_learns_from_the_article_and_predicts_a_label_a_fold_lacks() -> None:
    rng = np.random.default_rng(1)
    articles = np.repeat(np.arange(60), 5)
    topic = rng.random(60)[articles] > 0.5  # a label that every sentence of half the articles carries
    own = np.clip(np.where(topic, 0.6, 0.4) + rng.normal(0, 0.25, len(articles)), 0.01, 0.99)
    mixed = np.tile(own[:, None], (1, 4))
    targets = np.zeros((len(articles), 4), dtype=np.int8)
    targets[:, 0] = topic
    targets[:, 1] = 1  # every sentence: a training fold with one class only
    keys = [(str(a), 1) for a in articles]
    stage = article_context.fit(mixed[None], mixed, targets, keys)

    in_article = article_context.apply(stage, mixed[None], mixed, keys)[:, 0]
    alone = article_context.apply(stage, mixed[None], mixed, None)[:, 0]
    assert roc_auc_score(topic, in_article) > roc_auc_score(topic, alone) + 0.1
    assert stage.coefficients["financing"] == [0.0] * (4 + 24 + 1)
    assert article_context.apply(stage, mixed[None], mixed, keys)[:, 1] == pytest.approx(1.0, abs=1e-3)


def records_of(rows: list) -> list[dict]:
    return [{"text": r.text, "prev": r.prev, "next": r.next, "article_id": r.article_id, "paragraph": r.paragraph, "sentence_id": r.sentence_id} for r in rows]


def test_small_model_has_a_stage_and_reads_the_article(small_model: Path) -> None:
    model = load_model(small_model)
    assert model.card.article_context is not None and model.card.article_context.parts == 2
    rows = starter_articles(40, start=1)[:40]
    texts, neighbours = [r.text for r in rows], [(r.prev, r.next) for r in rows]
    in_articles = model.predict_proba(texts, neighbours, [(r.article_id, r.paragraph) for r in rows])
    alone = model.predict_proba(texts, neighbours)
    assert np.abs(in_articles - alone).max() > 0.01
    # Alone, a sentence's probabilities do not depend on the other texts of the call.
    assert model.predict_proba(texts[3:4], neighbours[3:4]) == pytest.approx(alone[3:4])


@pytest.mark.parametrize("batch_size", [1, 7, 10_000])
def test_batches_never_change_a_result(small_model: Path, batch_size: int) -> None:
    model = load_model(small_model)
    rows = starter_articles(20, start=2)[:120]
    records = records_of(rows)
    whole = model.predict_proba([r.text for r in rows], [(r.prev, r.next) for r in rows], [(r.article_id, r.paragraph) for r in rows])
    classified = list(classify_records(records, model=model, batch_size=batch_size))
    assert [record["sentence_id"] for record in classified] == [r.sentence_id for r in rows]
    got = np.array([[record["scores"][label] for label in LABELS] for record in classified])
    assert got == pytest.approx(np.round(whole, 4), abs=1e-4)


def test_worker_processes_give_the_same_result(small_model: Path) -> None:
    model = load_model(small_model)
    records = records_of(starter_articles(30, start=3)[:90])
    one = list(classify_records(records, model=model, batch_size=8))
    two = list(classify_sentence_records(records, model=model, jobs=2, batch_size=8))
    assert two == one


def test_records_without_an_article_are_judged_alone(small_model: Path) -> None:
    model = load_model(small_model)
    rows = starter_articles(30, start=4)[:20]
    records = [{"text": r.text, "prev": r.prev, "next": r.next} for r in rows]
    classified = list(classify_records(records, model=model, batch_size=6))
    alone = model.predict_proba([r.text for r in rows], [(r.prev, r.next) for r in rows])
    assert np.array([[c["scores"][label] for label in LABELS] for c in classified]) == pytest.approx(np.round(alone, 4), abs=1e-4)


def test_sentence_partitions_never_cut_an_article(tmp_path: Path) -> None:
    rows = starter_articles(10)[:300]
    path = tmp_path / "sentences.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records_of(rows)), encoding="utf-8")
    ranges = list(line_ranges(path, target_bytes=2_000, group=lambda line: json.loads(line)["article_id"]))
    assert len(ranges) > 3
    data = path.read_bytes()
    firsts = [json.loads(data[start:end].split(b"\n", 1)[0])["article_id"] for start, end, _ in ranges]
    lasts = [json.loads(data[start:end].rstrip(b"\n").rsplit(b"\n", 1)[-1])["article_id"] for start, end, _ in ranges]
    assert all(last != first for last, first in zip(lasts, firsts[1:], strict=False))
    assert b"".join(data[start:end] for start, end, _ in ranges) == data
    assert len(plan_partitions([path], kind="sentences", partition_bytes=2_000)) == len(ranges)


def test_a_stage_that_does_not_fit_the_model_is_refused(small_model: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(small_model, folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["article_context"]["parts"] = 1
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match="article-context stage reads 1 first-stage parts, the model has 2") as error:
        load_model(folder)
    assert "\n" not in str(error.value)


def test_cards_from_before_the_stage_load_without_one(small_model: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(small_model, folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    del card["recipe"]["article_context"], card["article_context"]
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    model = load_model(folder)
    assert model.card.article_context is None and not model.card.recipe.article_context
    rows = starter_articles(40)[:10]
    first = model.first_stage([r.text for r in rows])
    assert model.predict_proba([r.text for r in rows], None, [(r.article_id, r.paragraph) for r in rows]) == pytest.approx(0.5 * first[0] + 0.5 * first[1])


def test_stage_round_trips_through_the_card() -> None:
    stage = ArticleContext(parts=1, coefficients={label: [0.1] * 29 for label in LABELS}, intercepts={label: -1.0 for label in LABELS})
    assert ArticleContext.model_validate_json(stage.model_dump_json()) == stage


def test_a_stage_with_the_wrong_number_of_coefficients_is_refused(small_model: Path, tmp_path: Path) -> None:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(small_model, folder)
    card = json.loads((folder / "model_card.json").read_text(encoding="utf-8"))
    card["article_context"]["coefficients"]["safety_risk"].pop()
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match="needs 33 coefficients and an intercept per label; retrain the model"):
        load_model(folder)


def test_a_label_set_of_few_articles_is_trained_without_the_stage(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from annotate.cli import cli
    from annotate.train import MIN_STAGE_ARTICLES

    rows = starter_articles(30)
    assert len({row.article_id for row in rows}) < MIN_STAGE_ARTICLES
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(row.model_dump_json() + "\n" for row in rows), encoding="utf-8")
    result = CliRunner().invoke(cli, ["train", "--labels", str(labels), "-o", str(tmp_path / "model"), "--no-eval", "--tuned-weight", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[-1] == f"trained without the article-context stage: it needs sentences of at least {MIN_STAGE_ARTICLES} articles with honest first-stage scores"
    card = load_model(tmp_path / "model").card
    # The recipe still asks for the stage: retrained on more articles (as the ML backend does), the model gets it.
    assert card.article_context is None and card.recipe.article_context

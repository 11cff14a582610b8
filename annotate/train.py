"""Train the sentence classifier and save it with its model card.

Each sentence gets two feature blocks side by side: hashed word 1-2-grams
(Chinese characters count as words, so Chinese gets character 1-2-grams with
no tokenizer of our own) weighted by TF-IDF, and, in the default (accurate)
model, the multilingual sentence encoder's embedding scaled by the recipe's
``encoder_weight`` (:mod:`annotate.encoder`). One logistic regression per
label reads both. With ``encoder_weight=0`` the model is the fast one: n-grams
only. Hashing keeps the saved model small and fast to load safely with
``skops.io``: there is no vocabulary to store, and the encoder is not stored
at all (the card names it).

The default model also averages in the fine-tuned transformer of
:mod:`annotate.tuned` (the recipe's ``tuned_weight``): training copies its
archive as it is and picks the thresholds on the sentences it was not tuned on.
Both models then get the article-context stage (:mod:`annotate.article_context`),
fitted on the sentences whose first-stage scores are honest.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse
from numpy.typing import NDArray
from pydantic import BaseModel
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, precision_recall_fscore_support
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from . import article_context, tuned
from ._io import atomic_write
from .dataset import rows_sha256
from .encoder import DIMENSIONS, Encoder, Neighbours, dense_rows, installed_spec
from .errors import DatasetError, ModelError
from .labels import LABELS
from .schemas import SCHEMA_VERSION, EncoderSpec, LabeledSentence, ModelCard, Recipe, TunedSpec

CARD_FILE = "model_card.json"
TUNED_PREFIX = "tuned-e5-"
_CJK_RANGES = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
# One token per Chinese character, or a run of letters/digits that starts with a letter.
TOKEN_PATTERN = rf"(?u)[{_CJK_RANGES}]|[^\W\d_{_CJK_RANGES}][^\W{_CJK_RANGES}]+"
N_FEATURES = 2**18
CV_FOLDS = 5
# The F1-optimal threshold of calibrated scores is half the best F1 (Lipton et al., 2014), so one
# under 0.2 means out-of-fold F1 under 0.4: a classifier that has learnt too little, where F1 is
# maximised by tagging nearly every sentence. The grid stops at 0.2 so a small first label set
# gives a cautious model, not one that tags everything (on the starter set they fall in 0.3-0.45).
THRESHOLD_GRID = np.round(np.arange(0.20, 0.801, 0.01), 2)
# The only classes a saved model may contain; classify.load_model refuses anything else.
TRUSTED_TYPES = sorted(f"{cls.__module__}.{cls.__name__}" for cls in (Pipeline, HashingVectorizer, TfidfTransformer, LogisticRegression))
# What a model file holds: a dict with exactly these entries.
MODEL_PARTS = ("ngrams", "classifiers")
FAST_RECIPE = Recipe(encoder_weight=0.0, context_weight=0.0, tuned_weight=0.0)
# The article-context stage is fitted only on label sets whose honest first-stage scores span this many articles.
MIN_STAGE_ARTICLES = 50
# Each label needs this many positive and negative sentences with honest transformer scores (never tuned on, or
# cross-fitted), to pick its threshold.
MIN_UNSEEN_EXAMPLES = 3


class TrainingResult(BaseModel):
    """What ``train`` produced and where it saved it."""

    model_dir: str
    card: ModelCard


def build_ngrams() -> Pipeline:
    """An unfitted n-gram block: hashed word 1-2-grams, then TF-IDF (rows of unit length)."""
    words = HashingVectorizer(
        token_pattern=TOKEN_PATTERN, ngram_range=(1, 2), n_features=N_FEATURES, alternate_sign=False, norm=None
    )
    return Pipeline([("words", words), ("tfidf", TfidfTransformer(sublinear_tf=True))])


def _classifier(c: float) -> LogisticRegression:
    return LogisticRegression(C=c, class_weight="balanced", solver="liblinear", dual=True, max_iter=2000, random_state=0)


@dataclass
class SentenceModel:
    """The fitted n-gram block and per-label logistic regressions, plus the encoder blocks when the recipe has them.

    The dense part of a sentence's features is its own embedding and, with a
    context weight, the mean embedding of its neighbours: the guide resolves
    "the deal" or 此举 from the article, and so does the model, a little.
    """

    ngrams: Pipeline
    classifiers: list[LogisticRegression]
    encoder_weight: float = 0.0
    context_weight: float = 0.0
    encoder: Encoder | None = None

    def features(self, texts: Sequence[str], embeddings: NDArray[Any] | None = None, neighbours: Neighbours | None = None) -> Any:
        """The sparse feature matrix of ``texts``; ``embeddings`` (from :func:`embed`), if given, must be theirs."""
        ngrams = self.ngrams.transform(list(texts))
        if not self.encoder_weight:
            return ngrams
        if embeddings is None:
            if self.encoder is None:
                raise ModelError("this model needs its sentence encoder, and none was given")
            embeddings = dense_rows(texts, neighbours, encoder=self.encoder, context=bool(self.context_weight))
        scale = np.repeat([self.encoder_weight, self.context_weight], DIMENSIONS)[: embeddings.shape[1]]
        dense = scipy.sparse.csr_matrix(np.asarray(embeddings, dtype=np.float64) * scale)
        return scipy.sparse.hstack([ngrams, dense], format="csr")

    def predict_proba(self, texts: Sequence[str], embeddings: NDArray[Any] | None = None, neighbours: Neighbours | None = None) -> NDArray[Any]:
        """An ``(n, labels)`` array of probabilities, columns in :data:`LABELS` order."""
        matrix = self.features(texts, embeddings, neighbours)
        return np.column_stack([classifier.predict_proba(matrix)[:, 1] for classifier in self.classifiers])

    def parts(self) -> dict[str, Any]:
        """What the model file stores: everything but the encoder, which the card names."""
        return {"ngrams": self.ngrams, "classifiers": self.classifiers}


def embed(texts: Sequence[str], recipe: Recipe, encoder: Encoder | None = None, neighbours: Neighbours | None = None) -> NDArray[Any] | None:
    """The dense rows of ``texts`` for ``recipe`` (see :func:`dense_rows`), or ``None`` when it uses no encoder."""
    if not recipe.encoder_weight:
        return None
    return dense_rows(list(texts), neighbours, encoder=encoder or Encoder(), context=bool(recipe.context_weight))


def sample_weights(set_names: Sequence[str], recipe: Recipe) -> NDArray[Any] | None:
    """Each row's weight from the recipe's ``set_weights`` by the name of its label set, or ``None`` when all weigh 1."""
    if not any(recipe.set_weights.get(name, 1.0) != 1.0 for name in set_names):
        return None
    return np.array([recipe.set_weights.get(name, 1.0) for name in set_names], dtype=float)


def fit_model(
    texts: Sequence[str],
    targets: NDArray[Any],
    *,
    recipe: Recipe,
    embeddings: NDArray[Any] | None = None,
    sample_weight: NDArray[Any] | None = None,
    encoder: Encoder | None = None,
) -> SentenceModel:
    """Fit the n-gram block and one logistic regression per label column of ``targets``.

    ``embeddings`` are the dense rows of ``texts`` from :func:`embed`
    (computed here, without context, when the recipe needs them and none
    are given).
    """
    if recipe.encoder_weight and embeddings is None:
        encoder = encoder or Encoder()
        embeddings = embed(texts, recipe, encoder)
    model = SentenceModel(
        ngrams=build_ngrams().fit(list(texts)), classifiers=[], encoder_weight=recipe.encoder_weight,
        context_weight=recipe.context_weight, encoder=encoder,
    )  # fmt: skip
    matrix = model.features(texts, embeddings)
    for column in range(targets.shape[1]):
        model.classifiers.append(_classifier(recipe.c).fit(matrix, targets[:, column], sample_weight=sample_weight))
    return model


def neighbours_of(rows: Sequence[LabeledSentence]) -> list[tuple[str, str]]:
    return [(row.prev, row.next) for row in rows]


def label_matrix(rows: Sequence[LabeledSentence]) -> NDArray[Any]:
    return np.array([[getattr(row, label) for label in LABELS] for row in rows], dtype=np.int8)


def check_trainable(rows: Sequence[LabeledSentence]) -> None:
    if len(rows) < 20:
        raise DatasetError(f"only {len(rows)} labelled sentences; training needs at least 20")
    matrix = label_matrix(rows)
    for column, label in enumerate(LABELS):
        positives = int(matrix[:, column].sum())
        if positives < 3 or positives > len(rows) - 3:
            raise DatasetError(f"label {label!r} is on {positives} of {len(rows)} sentences; each label needs at least 3 positive and 3 negative examples")
    if len({row.article_id for row in rows}) < CV_FOLDS:
        raise DatasetError(f"the label set has fewer than {CV_FOLDS} articles; cross-validation needs more")


def out_of_fold_scores(
    texts: Sequence[str],
    targets: NDArray[Any],
    groups: Sequence[str],
    *,
    recipe: Recipe | None = None,
    embeddings: NDArray[Any] | None = None,
    sample_weight: NDArray[Any] | None = None,
    folds: int = CV_FOLDS,
    neighbours: Neighbours | None = None,
) -> NDArray[Any]:
    """Probabilities for every sentence from a model of ``recipe`` (default: the default model's) that never saw its article.

    ``embeddings`` are the dense rows from :func:`embed`; without them they
    are computed here, with ``neighbours`` when the recipe reads context.
    """
    recipe = recipe or Recipe()
    if embeddings is None:
        embeddings = embed(list(texts), recipe, neighbours=neighbours)
    scores = np.zeros(targets.shape, dtype=float)
    texts_array = np.asarray(texts, dtype=object)
    for train_index, test_index in GroupKFold(n_splits=folds).split(texts_array, targets, groups):
        model = fit_model(
            texts_array[train_index], targets[train_index], recipe=recipe,
            embeddings=_rows(embeddings, train_index), sample_weight=_rows(sample_weight, train_index),
        )  # fmt: skip
        scores[test_index] = model.predict_proba(texts_array[test_index], _rows(embeddings, test_index))
    return scores


def _rows(array: NDArray[Any] | None, index: NDArray[Any]) -> NDArray[Any] | None:
    return None if array is None else array[index]


def best_thresholds(targets: NDArray[Any], scores: NDArray[Any]) -> NDArray[Any]:
    """Per label, the decision threshold with the highest F1 on ``scores`` (the lowest one on a tie).

    F1 is counted for the whole grid at once (``2 tp / (predicted + actual)``,
    0 without a true positive, as ``f1_score(zero_division=0)``): calling
    ``f1_score`` per threshold spent most of cross-validation's time in input checks.
    """
    thresholds = np.empty(targets.shape[1])
    for column in range(targets.shape[1]):
        truth = np.asarray(targets[:, column]).astype(bool)
        chosen = np.asarray(scores[:, column])[:, None] >= THRESHOLD_GRID[None, :]
        true_positives = (chosen & truth[:, None]).sum(axis=0)
        denominator = chosen.sum(axis=0) + truth.sum()
        f1 = np.divide(2.0 * true_positives, denominator, out=np.zeros(len(THRESHOLD_GRID)), where=denominator > 0)
        thresholds[column] = THRESHOLD_GRID[int(np.argmax(f1))]
    return thresholds


def metrics_table(targets: NDArray[Any], predicted: NDArray[Any], scores: NDArray[Any] | None = None) -> dict[str, dict[str, float]]:
    """Per-label precision/recall/F1/support (and Brier score), plus micro and macro averages."""
    precision, recall, f1, support = precision_recall_fscore_support(targets, predicted, zero_division=0)
    table: dict[str, dict[str, float]] = {}
    for column, label in enumerate(LABELS):
        table[label] = {
            "precision": round(float(precision[column]), 4),
            "recall": round(float(recall[column]), 4),
            "f1": round(float(f1[column]), 4),
            "support": int(support[column]),
        }
        if scores is not None:
            table[label]["brier"] = round(float(brier_score_loss(targets[:, column], scores[:, column])), 4)
    for average in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(targets, predicted, average=average, zero_division=0)
        table[average] = {"precision": round(float(p), 4), "recall": round(float(r), 4), "f1": round(float(f), 4)}
    return table


def cross_validate(
    rows: Sequence[LabeledSentence],
    *,
    recipe: Recipe | None = None,
    embeddings: NDArray[Any] | None = None,
    sample_weight: NDArray[Any] | None = None,
    folds: int = CV_FOLDS,
) -> tuple[dict[str, dict[str, float]], NDArray[Any], NDArray[Any]]:
    """Grouped cross-validation with thresholds picked inside each training fold.

    Returns the metrics, the out-of-fold scores and the out-of-fold decisions.
    Sentences of one article are never on both sides of a split, and each
    fold's thresholds come from its own training part, so the figures are
    not tuned on the sentences they score.
    """
    recipe = recipe or Recipe()
    texts = np.asarray([row.text for row in rows], dtype=object)
    groups = np.asarray([row.article_id for row in rows])
    targets = label_matrix(rows)
    if embeddings is None:
        embeddings = embed(list(texts), recipe, neighbours=neighbours_of(rows))
    scores = np.zeros(targets.shape, dtype=float)
    decisions = np.zeros(targets.shape, dtype=np.int8)
    for train_index, test_index in GroupKFold(n_splits=folds).split(texts, targets, groups):
        train_embeddings, train_weight = _rows(embeddings, train_index), _rows(sample_weight, train_index)
        inner = out_of_fold_scores(
            texts[train_index], targets[train_index], groups[train_index], recipe=recipe,
            embeddings=train_embeddings, sample_weight=train_weight, folds=min(3, folds),
        )  # fmt: skip
        thresholds = best_thresholds(targets[train_index], inner)
        model = fit_model(texts[train_index], targets[train_index], recipe=recipe, embeddings=train_embeddings, sample_weight=train_weight)
        scores[test_index] = model.predict_proba(texts[test_index], _rows(embeddings, test_index))
        decisions[test_index] = scores[test_index] >= thresholds
    return metrics_table(targets, decisions, scores), scores, decisions


def fold_metrics(scores: NDArray[Any], targets: NDArray[Any], groups: Sequence[str]) -> dict[str, dict[str, float]]:
    """Metrics of out-of-fold ``scores``, each article's thresholds picked on the other articles."""
    articles = np.asarray(groups)
    decisions = np.zeros(targets.shape, dtype=np.int8)
    for train_index, test_index in GroupKFold(n_splits=min(CV_FOLDS, len(set(groups)))).split(scores, targets, articles):
        decisions[test_index] = scores[test_index] >= best_thresholds(targets[train_index], scores[train_index])
    return metrics_table(targets, decisions, scores)


def library_versions() -> dict[str, str]:
    import pydantic
    import scipy
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "skops": skops.__version__,
        "pydantic": pydantic.__version__,
    }


def train(
    rows: Sequence[LabeledSentence],
    *,
    model_dir: Path,
    recipe: Recipe | None = None,
    sample_weight: NDArray[Any] | None = None,
    evaluate: bool = True,
    tuned_archive: Path | None = None,
) -> TrainingResult:
    """Fit on ``rows``, pick thresholds on grouped out-of-fold scores, save model and card.

    ``recipe`` defaults to the accurate model (:class:`~annotate.schemas.Recipe`);
    :data:`FAST_RECIPE` gives the n-gram-only one. Rows with a ``sample_weight``
    of 0 are left out. With ``evaluate`` the card also gets cross-validated
    metrics (slower).

    With a ``tuned_weight``, the fine-tuned transformer of ``tuned_archive``
    (default: the bundled default model's) is copied into the model folder as
    it is, and its probabilities are averaged with the linear model's. Its
    layers have seen most real-article sentences, so thresholds and metrics
    come from the training sentences it has not seen and from those its
    archive carries cross-fitted scores for (the linear model's scores are
    out-of-fold, as always).

    With ``article_context`` in the recipe, the article-context stage is fitted
    on those same honest scores, and the thresholds and metrics are the stage's;
    when they span fewer than :data:`MIN_STAGE_ARTICLES` articles the model is
    trained without it (the card has no stage; its recipe still asks for one).
    """
    import skops.io

    recipe = recipe or Recipe()
    if sample_weight is not None:
        # A weight of 0 leaves a row out: it would cost encoding and fitting time and change nothing.
        kept = [n for n, weight in enumerate(sample_weight) if weight > 0]
        rows, sample_weight = [rows[n] for n in kept], np.asarray(sample_weight)[kept]
    check_trainable(rows)
    texts = [row.text for row in rows]
    groups = [row.article_id for row in rows]
    targets = label_matrix(rows)
    # First, so that a label set the transformer has all seen is refused before minutes of embedding.
    tuned_part = _TunedPart.prepare(Path(tuned_archive) if tuned_archive else None, rows) if recipe.tuned_weight else None
    encoder = Encoder() if recipe.encoder_weight else None
    embeddings = embed(texts, recipe, encoder, neighbours_of(rows))
    # Thresholds (and the stage) come from rows with honest first-stage scores: the linear model's are out-of-fold,
    # and the transformer's are honest for the sentences it was not tuned on and for those its archive has cross-fitted.
    honest = np.ones(len(rows), dtype=bool) if tuned_part is None else tuned_part.honest
    honest_rows = [row for row, kept in zip(rows, honest, strict=True) if kept]
    honest_groups = [row.article_id for row in honest_rows]
    honest_weight = None if sample_weight is None else np.asarray(sample_weight)[honest]
    # Fitted on fewer articles the stage learns their quirks: on 20 real articles it cost 0.06 of held-out macro-F1,
    # from 50 on it gained. The recipe still asks for it, so a retraining with more articles fits it.
    with_stage = recipe.article_context and len(set(honest_groups)) >= MIN_STAGE_ARTICLES
    metrics: dict[str, dict[str, float]] = {}
    if evaluate and tuned_part is None and not with_stage:
        metrics, linear_scores, _ = cross_validate(rows, recipe=recipe, embeddings=embeddings, sample_weight=sample_weight)
    else:
        linear_scores = out_of_fold_scores(texts, targets, groups, recipe=recipe, embeddings=embeddings, sample_weight=sample_weight)
    first = linear_scores[None] if tuned_part is None else np.stack([linear_scores[honest], tuned_part.scores])
    mixed = first[0] if tuned_part is None else tuned.average(first[0], first[1], recipe.tuned_weight)
    stage = None
    scores = mixed
    if with_stage:
        keys = [(row.article_id, row.paragraph) for row in honest_rows]
        scores = article_context.out_of_fold(first, mixed, targets[honest], keys, honest_groups, honest_weight, folds=CV_FOLDS)
        stage = article_context.fit(first, mixed, targets[honest], keys, honest_weight)
    thresholds = best_thresholds(targets[honest], scores)
    if evaluate and (tuned_part is not None or stage is not None):
        metrics = fold_metrics(scores, targets[honest], honest_groups)
    model = fit_model(texts, targets, recipe=recipe, embeddings=embeddings, sample_weight=sample_weight)

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    model_bytes = skops.io.dumps(model.parts())
    model_sha = hashlib.sha256(model_bytes).hexdigest()
    # The model file is named by its content and the card is written last, so a
    # training run stopped at any point leaves the previous model and card usable.
    model_file = f"model-{model_sha[:12]}.skops"
    with atomic_write(model_dir / model_file, mode="wb") as handle:
        handle.write(model_bytes)
    tuned_spec = tuned_part.install(model_dir) if tuned_part is not None else None
    created = datetime.now(UTC)
    card = ModelCard(
        model_id=f"{model_dir.name}-{created:%Y%m%dT%H%M%S}",
        schema_version=SCHEMA_VERSION,
        labels=list(LABELS),
        thresholds={label: float(t) for label, t in zip(LABELS, thresholds, strict=True)},
        metrics=metrics,
        training_data_sha256=rows_sha256(rows),
        training_sentences=len(rows),
        label_counts={label: int(targets[:, column].sum()) for column, label in enumerate(LABELS)},
        library_versions=library_versions(),
        created=created.isoformat(timespec="seconds"),
        model_sha256=model_sha,
        model_file=model_file,
        trusted_types=TRUSTED_TYPES,
        recipe=recipe,
        encoder=installed_spec() if recipe.encoder_weight else None,
        tuned=tuned_spec,
        article_context=stage,
    )
    with atomic_write(model_dir / CARD_FILE) as handle:
        handle.write(json.dumps(card.model_dump(), indent=2, ensure_ascii=False) + "\n")
    current = {model_file, tuned_spec.file if tuned_spec else ""}
    for superseded in [*model_dir.glob("model*.skops"), *model_dir.glob(f"{TUNED_PREFIX}*.npz")]:
        if superseded.name not in current:
            superseded.unlink()
    return TrainingResult(model_dir=str(model_dir), card=card)


@dataclass
class _TunedPart:
    """The tuned transformer during training: its archive and its honest probabilities.

    Honest are the probabilities of the sentences it was never tuned on, and the
    cross-fitted ones its archive carries for sentences it was tuned on.
    """

    source: Path
    data: bytes
    spec: EncoderSpec
    layers: list[int]
    honest: NDArray[np.bool_]
    unseen_count: int
    scores: NDArray[Any]  # of the honest rows, in order

    @classmethod
    def prepare(cls, archive: Path | None, rows: Sequence[LabeledSentence]) -> _TunedPart:
        source = archive or tuned.bundled_archive()
        try:
            data = source.read_bytes()
        except OSError as e:
            raise ModelError(f"{source}: cannot read the tuned transformer ({e.strerror})") from e
        contents = tuned.read_archive(source)
        base = EncoderSpec.model_validate(contents.about.get("base"))
        tuned.check_installed(base, model=source)
        if contents.about.get("labels") != list(LABELS):
            raise ModelError(f"{source}: the transformer was tuned for labels {contents.about.get('labels')}, not {list(LABELS)}")
        texts = [row.text for row in rows]
        unseen = ~contents.has_seen(texts)
        cross_fitted, cross_fitted_scores = contents.cross_fitted(texts)
        honest = unseen | cross_fitted
        targets = label_matrix(rows)[honest]
        for column, label in enumerate(LABELS):
            positives = int(targets[:, column].sum())
            if min(positives, len(targets) - positives) < MIN_UNSEEN_EXAMPLES:
                raise DatasetError(
                    f"label {label!r} is on {positives} of the {len(targets)} training sentences with honest transformer scores; "
                    f"its threshold needs at least {MIN_UNSEEN_EXAMPLES} positive and negative ones: add annotations of other articles, "
                    "or train without the transformer (--tuned-weight 0)"
                )
        if len({row.article_id for row, kept in zip(rows, honest, strict=True) if kept}) < 2:
            raise DatasetError(
                "the training sentences with honest transformer scores come from fewer than 2 articles; thresholds need "
                "cross-validation over them: add annotations of other articles, or train without the transformer (--tuned-weight 0)"
            )
        scores = np.zeros((len(rows), len(LABELS)))
        scores[cross_fitted] = cross_fitted_scores
        scores[unseen] = tuned.TunedTransformer(source).predict_proba([text for text, new in zip(texts, unseen, strict=True) if new])
        return cls(source, data, base, sorted(contents.layers), honest, int(unseen.sum()), scores[honest])

    def install(self, model_dir: Path) -> TunedSpec:
        """Copy the archive into ``model_dir`` under a name made of its content; the spec for the card."""
        digest = hashlib.sha256(self.data).hexdigest()
        name = f"{TUNED_PREFIX}{digest[:12]}.npz"
        if not (model_dir / name).is_file() or hashlib.sha256((model_dir / name).read_bytes()).hexdigest() != digest:
            with atomic_write(model_dir / name, mode="wb") as handle:
                handle.write(self.data)
        return TunedSpec(
            file=name, sha256=digest, base=self.spec, layers=self.layers, unseen_sentences=self.unseen_count,
            cross_fitted_sentences=int(self.honest.sum()) - self.unseen_count,
        )  # fmt: skip


def train_label_sets(
    labels_path: Path, *, model_dir: Path, recipe: Recipe | None = None, evaluate: bool = True, tuned_archive: Path | None = None
) -> TrainingResult:
    """:func:`train` on a label-set file or folder, each set weighted by the recipe's ``set_weights``.

    What the ML backend's retraining runs; ``annotate train`` does the same in
    two steps, to report the sets it leaves out. With the default recipe the
    invented starter set is left out and every other set (real articles, Label
    Studio annotations) weighs 1.
    """
    from .dataset import load_labels_by_set

    recipe = recipe or Recipe()
    rows, sets = load_labels_by_set(labels_path)
    return train(rows, model_dir=model_dir, recipe=recipe, sample_weight=sample_weights(sets, recipe), evaluate=evaluate, tuned_archive=tuned_archive)

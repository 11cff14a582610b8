"""Classify sentences with a saved model and build per-article digests."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pydantic import ValidationError

from . import article_context
from ._io import batched
from .article_context import ArticleKey
from .errors import ModelError
from .labels import LABELS
from .schemas import SCHEMA_VERSION, ArticleDigest, CategoryDigest, ClassifiedSentence, Evidence, ModelCard, Sentence

if TYPE_CHECKING:
    from .tuned import TunedTransformer

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL_DIR = MODELS_DIR / "default"
# Bundled models that --model accepts by name: the accurate default and the n-gram-only fast one.
BUNDLED_MODELS = ("default", "fast")
CARD_FILE = "model_card.json"
BATCH_SIZE = 4096
# The transformer runs about 50 sentences/s per core: smaller batches keep every --jobs worker busy and the output flowing
# (on 2 cores, 4,000 sentences: 81 sentences/s with one process, 83 with --jobs 2; 85 and 49 with 4,096-sentence batches).
TRANSFORMER_BATCH_SIZE = 1024
EVIDENCE_PER_LABEL = 3


@dataclass(frozen=True)
class Model:
    """A fitted pipeline with its card: ``predict`` applies the card's thresholds."""

    pipeline: Any
    card: ModelCard
    path: Path
    tuned: TunedTransformer | None = None  # when the card names one

    @property
    def batch_size(self) -> int:
        """Sentences per prediction batch unless told otherwise."""
        return BATCH_SIZE if self.tuned is None else TRANSFORMER_BATCH_SIZE

    @property
    def thresholds(self) -> NDArray[Any]:
        return np.array([self.card.thresholds[label] for label in LABELS])

    def predict_proba(
        self, texts: Sequence[str], neighbours: Sequence[tuple[str, str]] | None = None, articles: Sequence[ArticleKey] | None = None
    ) -> NDArray[Any]:
        """An ``(n, 4)`` array of probabilities, columns in :data:`LABELS` order.

        ``neighbours`` are each text's ``(previous, next)`` sentences in its
        article; a model with a context block reads them, others ignore them.
        ``articles`` are each text's ``(article_id, paragraph)``, or None for
        a text judged alone (all of them, when not given); a model with an
        article-context stage reads them, so give whole articles.
        """
        size = self.batch_size
        chunks = [
            self.first_stage(texts[start : start + size], None if neighbours is None else neighbours[start : start + size])
            for start in range(0, len(texts), size)
        ]
        first = np.concatenate(chunks, axis=1) if chunks else self.first_stage([])
        return self.finish(first, articles)

    def first_stage(self, texts: Sequence[str], neighbours: Sequence[tuple[str, str]] | None = None) -> NDArray[Any]:
        """``(parts, n, 4)``: the linear model's probabilities, and the tuned transformer's when the model has one."""
        linear = np.asarray(self.pipeline.predict_proba(list(texts), neighbours=neighbours), dtype=float).reshape(len(texts), len(LABELS))
        if self.tuned is None:
            return linear[None]
        tuned = self.tuned.predict_proba(list(texts)) if len(texts) else np.zeros_like(linear)
        return np.stack([linear, tuned])

    def finish(self, first: NDArray[Any], articles: Sequence[ArticleKey] | None = None) -> NDArray[Any]:
        """The probabilities from :meth:`first_stage`'s parts, through the article-context stage when the model has one."""
        if len(first) == 1:
            mixed = first[0]
        else:
            from .tuned import average

            mixed = average(first[0], first[1], self.card.recipe.tuned_weight)
        if self.card.article_context is None:
            return np.asarray(mixed)
        return article_context.apply(self.card.article_context, first, mixed, articles)

    def with_encoder_threads(self, threads: int) -> Model:
        """This model with its sentence encoder and transformer (if any) using ``threads`` threads: one worker of many needs fewer."""
        model = self if self.tuned is None else dataclasses.replace(self, tuned=self.tuned.with_threads(threads))
        encoder = getattr(self.pipeline, "encoder", None)
        if encoder is None:
            return model
        from .encoder import Encoder

        return dataclasses.replace(model, pipeline=dataclasses.replace(self.pipeline, encoder=Encoder(threads=threads)))

    def predict(
        self, texts: Sequence[str], neighbours: Sequence[tuple[str, str]] | None = None, articles: Sequence[ArticleKey] | None = None
    ) -> list[tuple[list[str], dict[str, float]]]:
        """``(labels, scores)`` for each text (see :meth:`predict_proba`)."""
        scores = self.predict_proba(texts, neighbours, articles)
        return [decide(row, self.thresholds) for row in scores]

    def predict_sentences(self, sentences: Sequence[Sentence]) -> list[tuple[list[str], dict[str, float]]]:
        """:meth:`predict` for sentences, each judged in its article (consecutive sentences of one article)."""
        return self.predict(*sentence_context(sentences))


def sentence_context(sentences: Sequence[Sentence]) -> tuple[list[str], list[tuple[str, str]], list[ArticleKey]]:
    """The texts, neighbours and article keys of ``sentences`` for :meth:`Model.predict_proba`."""
    return [s.text for s in sentences], [(s.prev, s.next) for s in sentences], [(s.article_id, s.paragraph) for s in sentences]


def decide(scores: NDArray[Any], thresholds: NDArray[Any]) -> tuple[list[str], dict[str, float]]:
    """``(labels, scores)`` for one row of probabilities: the labels at or above their threshold."""
    labels = [label for label, score, threshold in zip(LABELS, scores, thresholds, strict=True) if score >= threshold]
    return labels, {label: round(float(score), 4) for label, score in zip(LABELS, scores, strict=True)}


# Every subset of LABELS in LABELS order, indexed by its bit mask (bit i = LABELS[i]).
_LABEL_SETS = tuple(tuple(label for bit, label in enumerate(LABELS) if mask >> bit & 1) for mask in range(1 << len(LABELS)))
_BIT_VALUES = 1 << np.arange(len(LABELS))


def decide_batch(scores: NDArray[Any], thresholds: NDArray[Any]) -> tuple[list[list[str]], list[dict[str, float]]]:
    """:func:`decide` for a whole ``(n, 4)`` batch at once, with the same results.

    The comparisons and the rounding run in numpy; only the final lists and
    dicts are built in Python (this is the hot path of batch classification).
    """
    masks = (scores >= thresholds) @ _BIT_VALUES
    labels = [list(_LABEL_SETS[mask]) for mask in masks.tolist()]
    rounded = np.round(scores, 4).tolist()
    return labels, [dict(zip(LABELS, row)) for row in rounded]


def model_folder(path: Path | str | None) -> Path:
    """The folder of a model given as a folder, or by the name of a bundled model (``default``, ``fast``)."""
    if path is None:
        return DEFAULT_MODEL_DIR
    if str(path) in BUNDLED_MODELS and not Path(path).is_dir():
        return MODELS_DIR / str(path)
    return Path(path)


def load_model(path: Path | str | None = None, *, quick: bool = False) -> Model:
    """Load a model folder or bundled model by name (default: ``default``), refusing anything unsafe or stale.

    The model file must match the SHA-256 in its card, contain only the card's
    trusted types (checked again against our own allow-list), and have been
    trained for the current labels and schema version.

    With ``quick``, a model that is exactly our default pipeline is applied
    with numpy alone (see :mod:`annotate._linear`), which skips the seconds of
    importing scikit-learn and skops: the choice for a few articles, not for
    a corpus. Any other model is loaded as usual.
    """
    folder = model_folder(path)
    card_path = folder / CARD_FILE
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text(encoding="utf-8")))
    except FileNotFoundError as e:
        raise ModelError(f"{folder}: no model card ({CARD_FILE}); train one with 'annotate train -o {folder}'") from e
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise ModelError(f"{card_path}: not a valid model card ({where + ': ' if where else ''}{error['msg']})") from e
    except (OSError, ValueError) as e:
        raise ModelError(f"{card_path}: not a valid model card ({str(e).splitlines()[0]})") from e
    if card.labels != list(LABELS):
        raise ModelError(f"{folder}: model was trained for labels {card.labels}, not {list(LABELS)}; retrain it")
    if card.schema_version != SCHEMA_VERSION:
        raise ModelError(f"{folder}: model has schema version {card.schema_version}, this toolkit {SCHEMA_VERSION}; retrain it")
    model_path = folder / Path(card.model_file).name
    try:
        data = model_path.read_bytes()
    except OSError as e:
        raise ModelError(f"{model_path}: cannot read the model ({e.strerror})") from e
    if hashlib.sha256(data).hexdigest() != card.model_sha256:
        raise ModelError(f"{model_path}: file does not match the SHA-256 in its model card; refusing to load it")
    if sorted(card.thresholds) != sorted(LABELS) or not all(0.0 <= value <= 1.0 for value in card.thresholds.values()):
        raise ModelError(f"{card_path}: the card needs a threshold from 0 to 1 for each of {', '.join(LABELS)}")
    _check_model_archive(data, model_path)
    stage = card.article_context
    if stage is not None and (
        sorted(stage.coefficients) != sorted(LABELS)
        or sorted(stage.intercepts) != sorted(LABELS)
        or any(len(values) != article_context.feature_count(stage.parts) for values in stage.coefficients.values())
    ):
        count = article_context.feature_count(stage.parts)
        raise ModelError(f"{card_path}: the article-context stage needs {count} coefficients and an intercept per label; retrain the model")
    if card.encoder is not None:
        from .encoder import check_installed

        check_installed(card.encoder, model=folder)
    pipeline = None
    if quick:
        from ._linear import linear_pipeline

        pipeline = linear_pipeline(data, labels=len(LABELS), encoder_weight=card.recipe.encoder_weight, context_weight=card.recipe.context_weight)
    if pipeline is None:
        pipeline = _sentence_model(data, card, model_path)
    return Model(pipeline=pipeline, card=card, path=folder, tuned=_tuned_transformer(card, folder))


def _tuned_transformer(card: ModelCard, folder: Path) -> TunedTransformer | None:
    """The card's tuned transformer, its archive and base weights checked (the network itself loads on first use)."""
    if card.tuned is None:
        return None
    from .tuned import TunedTransformer, check_installed

    archive = folder / Path(card.tuned.file).name
    try:
        with archive.open("rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
    except OSError as e:
        raise ModelError(f"{archive}: cannot read the model's tuned transformer ({e.strerror})") from e
    if digest != card.tuned.sha256:
        raise ModelError(f"{archive}: file does not match the SHA-256 in its model card; refusing to load it")
    check_installed(card.tuned.base, model=folder)
    return TunedTransformer(archive)


def _sentence_model(data: bytes, card: ModelCard, model_path: Path) -> Any:
    import skops.io

    from .encoder import Encoder
    from .train import MODEL_PARTS, TRUSTED_TYPES, SentenceModel

    try:
        parts = skops.io.loads(data, trusted=TRUSTED_TYPES)
        if not isinstance(parts, dict) or sorted(parts) != sorted(MODEL_PARTS):
            raise ModelError(f"{model_path}: not a model of this toolkit (expected the parts {', '.join(MODEL_PARTS)}); retrain it")
        recipe = card.recipe
        model = SentenceModel(
            parts["ngrams"], list(parts["classifiers"]), recipe.encoder_weight, recipe.context_weight, Encoder() if recipe.encoder_weight else None
        )
        columns = np.shape(model.predict_proba(["a model check"]))
    except ModelError:
        raise
    except Exception as e:  # skops and a model of the wrong shape raise many types
        raise ModelError(f"{model_path}: cannot load the model ({type(e).__name__}: {e})") from e
    if columns != (1, len(LABELS)):
        raise ModelError(f"{model_path}: model gives {columns[-1]} scores per sentence, not {len(LABELS)}; retrain it")
    return model


# What a saved pipeline may hold besides train.TRUSTED_TYPES: plain containers,
# JSON values and numpy arrays. Functions, methods, partials, operator and
# reduce constructors (skops's other node kinds) are never part of our model.
_MODEL_NODE_KINDS = frozenset({"ObjectNode", "DictNode", "ListNode", "TupleNode", "JsonNode", "TypeNode", "NdArrayNode"})
_MODEL_PLAIN_TYPES = frozenset(
    f"builtins.{name}" for name in ("dict", "list", "tuple", "str", "int", "float", "bool", "NoneType")
) | {"numpy.ndarray", "numpy.float64"}
# train.TRUSTED_TYPES spelled out, so that checking a model file imports no scikit-learn
# (seconds here; tests/test_scale.py checks that the two agree).
TRUSTED_TYPE_NAMES = frozenset(
    {
        "sklearn.feature_extraction.text.HashingVectorizer",
        "sklearn.feature_extraction.text.TfidfTransformer",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.pipeline.Pipeline",
    }
)
# Our model unpacks to ~10 MB; far more is a zip bomb, not a model.
MAX_MODEL_UNPACKED_BYTES = 1 << 30


def _check_model_archive(data: bytes, model_path: Path) -> None:
    """Refuse a model file that is not a skops archive of our pipeline's types, before anything is imported or built.

    skops alone would also accept every scikit-learn estimator and some
    functions by default; this walk of its schema allows only our own list.
    """
    import zipfile

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if sum(entry.file_size for entry in archive.infolist()) > MAX_MODEL_UNPACKED_BYTES:
                raise ModelError(f"{model_path}: model unpacks to more than {MAX_MODEL_UNPACKED_BYTES >> 20} MB; refusing it")
            # json, like skops: another parser could read duplicate keys differently.
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, RecursionError, EOFError, OSError) as e:
        raise ModelError(f"{model_path}: not a skops model file ({type(e).__name__}: {e}); a pickle or joblib file is never loaded") from e
    allowed = _MODEL_PLAIN_TYPES | TRUSTED_TYPE_NAMES
    refused: set[str] = set()
    pending: list[Any] = [schema]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            if "__loader__" in node:
                name = f"{node.get('__module__')}.{node.get('__class__')}"
                if node["__loader__"] not in _MODEL_NODE_KINDS:
                    refused.add(f"{name} ({node['__loader__']})")
                elif name not in allowed:
                    refused.add(name)
            pending.extend(node.values())
    if refused:
        raise ModelError(f"{model_path}: model contains types that are not allowed: {', '.join(sorted(refused)[:10])}; refusing to load it")


def classify_records(records: Iterable[dict[str, Any]], *, model: Model, batch_size: int = BATCH_SIZE) -> Iterator[dict[str, Any]]:
    """Add ``labels`` and ``scores`` to each record, in input order.

    A record needs a ``text``; ``prev``, ``next``, ``article_id`` and
    ``paragraph`` are read when present (consecutive records with one
    ``article_id`` are an article).
    """
    thresholds = model.thresholds
    for block, scores in scored_records(records, model=model, batch_size=batch_size):
        yield from with_decisions(block, scores, thresholds)


def scored_records(records: Iterable[dict[str, Any]], *, model: Model, batch_size: int = BATCH_SIZE) -> Iterator[tuple[list[dict[str, Any]], NDArray[Any]]]:
    """Records with their probabilities, in input order, in blocks that never cut an article."""
    first_stages = ((batch, model.first_stage([record["text"] for record in batch], record_neighbours(batch))) for batch in batched(records, batch_size))
    return by_whole_articles(first_stages, model)


def record_neighbours(records: Sequence[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(record.get("prev") or "", record.get("next") or "") for record in records]


def article_key(record: dict[str, Any]) -> ArticleKey:
    """A record's ``(article_id, paragraph)``, or None when it names no article."""
    article = record.get("article_id")
    return (str(article), record.get("paragraph")) if article else None


def by_whole_articles(
    first_stages: Iterable[tuple[list[dict[str, Any]], NDArray[Any]]], model: Model
) -> Iterator[tuple[list[dict[str, Any]], NDArray[Any]]]:
    """Batches of records with their :meth:`Model.first_stage` parts, finished into probabilities.

    The article-context stage needs each article whole, so the records of an
    article that goes on into the next batch wait for it, with their parts:
    at most one article is held back at a time.
    """
    if model.card.article_context is None:
        for records, first in first_stages:
            yield records, model.finish(first)
        return
    waiting: list[dict[str, Any]] = []
    parts: list[NDArray[Any]] = []
    for records, first in first_stages:
        since = len(waiting)
        waiting.extend(records)
        parts.append(first)
        complete = _complete_articles(waiting, since)
        if complete:
            joined = np.concatenate(parts, axis=1)
            yield waiting[:complete], model.finish(joined[:, :complete], [article_key(record) for record in waiting[:complete]])
            waiting, parts = waiting[complete:], [joined[:, complete:]]
    if waiting:
        yield waiting, model.finish(np.concatenate(parts, axis=1), [article_key(record) for record in waiting])


def _complete_articles(records: Sequence[dict[str, Any]], since: int) -> int:
    """How many leading records are sure to be whole articles: all but the last article's run.

    ``records[:since]`` are one unfinished article (or nothing), so only the
    records after them are looked at: a long article costs no rescans.
    """
    last = article_key(records[-1])
    if last is None:
        return len(records)

    def continues(index: int) -> bool:
        key = article_key(records[index])
        return key is not None and key[0] == last[0]

    start = len(records) - 1
    while start > since and continues(start - 1):
        start -= 1
    return 0 if start == since and since > 0 and continues(since - 1) else start


def with_decisions(records: Sequence[dict[str, Any]], scores: NDArray[Any], thresholds: NDArray[Any]) -> Iterator[dict[str, Any]]:
    """Copies of ``records`` with the ``labels`` and rounded ``scores`` of their rows of probabilities."""
    labels, rounded = decide_batch(scores, thresholds)
    for record, record_labels, record_scores in zip(records, labels, rounded, strict=True):
        yield {**record, "labels": record_labels, "scores": record_scores}


def classify(sentences: Iterable[Sentence], *, model: Model, batch_size: int = BATCH_SIZE) -> Iterator[ClassifiedSentence]:
    """Classify sentences in batches, keeping their order."""
    for record in classify_records((s.model_dump() for s in sentences), model=model, batch_size=batch_size):
        # The sentence was validated when it was made and labels/scores come from us: skip re-validation.
        yield ClassifiedSentence.model_construct(**record)


def digest(sentences: Sequence[ClassifiedSentence], *, evidence: int = EVIDENCE_PER_LABEL) -> ArticleDigest:
    """One article's digest: each label with its count and strongest evidence sentences."""
    if not sentences:
        raise ValueError("an article digest needs at least one sentence")
    categories = []
    for label in LABELS:
        tagged = sorted((s for s in sentences if label in s.labels), key=lambda s: -s.scores[label])
        categories.append(
            CategoryDigest(
                label=label,
                count=len(tagged),
                evidence=[
                    Evidence(sentence_id=s.sentence_id, paragraph=s.paragraph, text=s.text, score=s.scores[label])
                    for s in tagged[:evidence]
                ],
            )
        )
    first = sentences[0]
    return ArticleDigest(article_id=first.article_id, title=first.title, source=first.source, sentences=len(sentences), categories=categories)


def digests(classified: Iterable[ClassifiedSentence]) -> Iterator[ArticleDigest]:
    """Digests of consecutive sentences grouped by article."""
    current: list[ClassifiedSentence] = []
    for sentence in classified:
        if current and sentence.article_id != current[0].article_id:
            yield digest(current)
            current = []
        current.append(sentence)
    if current:
        yield digest(current)


def render_digest(article: ArticleDigest) -> str:
    """The digest as readable text, with "[para. N]" references."""
    heading = article.title or article.article_id
    lines = [heading, "=" * min(len(heading), 80), f"{article.source}  ({article.sentences} sentences)"]
    for category in article.categories:
        lines.append(f"  {category.label}: {category.count}")
        for item in category.evidence:
            lines.append(f"    [para. {item.paragraph}] ({item.score:.2f}) {item.text}")
    return "\n".join(lines) + "\n"

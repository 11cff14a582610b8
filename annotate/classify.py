"""Classify sentences with a saved model and build per-article digests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from .errors import ModelError
from .labels import LABELS
from .schemas import SCHEMA_VERSION, ArticleDigest, CategoryDigest, ClassifiedSentence, Evidence, ModelCard, Sentence

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "default"
CARD_FILE = "model_card.json"
BATCH_SIZE = 4096
EVIDENCE_PER_LABEL = 3


@dataclass(frozen=True)
class Model:
    """A fitted pipeline with its card: ``predict`` applies the card's thresholds."""

    pipeline: Any
    card: ModelCard
    path: Path

    @property
    def thresholds(self) -> np.ndarray:
        return np.array([self.card.thresholds[label] for label in LABELS])

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """An ``(n, 4)`` array of probabilities, columns in :data:`LABELS` order."""
        return np.asarray(self.pipeline.predict_proba(list(texts)))

    def predict(self, texts: Sequence[str]) -> list[tuple[list[str], dict[str, float]]]:
        """``(labels, scores)`` for each text."""
        scores = self.predict_proba(texts)
        return [decide(row, self.thresholds) for row in scores]


def decide(scores: np.ndarray, thresholds: np.ndarray) -> tuple[list[str], dict[str, float]]:
    labels = [label for label, score, threshold in zip(LABELS, scores, thresholds, strict=True) if score >= threshold]
    return labels, {label: round(float(score), 4) for label, score in zip(LABELS, scores, strict=True)}


def load_model(path: Path | None = None) -> Model:
    """Load a model folder (default: the shipped model), refusing anything unsafe or stale.

    The model file must match the SHA-256 in its card, contain only the card's
    trusted types (checked again against our own allow-list), and have been
    trained for the current labels and schema version.
    """
    import skops.io

    from .train import TRUSTED_TYPES

    folder = Path(path) if path is not None else DEFAULT_MODEL_DIR
    card_path = folder / CARD_FILE
    try:
        card = ModelCard.model_validate(json.loads(card_path.read_text(encoding="utf-8")))
    except FileNotFoundError as e:
        raise ModelError(f"{folder}: no model card ({CARD_FILE}); train one with 'annotate train -o {folder}'") from e
    except (OSError, ValueError, ValidationError) as e:
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
    untrusted = set(skops.io.get_untrusted_types(data=data)) - set(TRUSTED_TYPES)
    if untrusted:
        raise ModelError(f"{model_path}: model contains types that are not allowed: {', '.join(sorted(untrusted))}")
    try:
        pipeline = skops.io.loads(data, trusted=TRUSTED_TYPES)
    except Exception as e:  # skops raises many types for a corrupt or hostile file
        raise ModelError(f"{model_path}: cannot load the model ({type(e).__name__}: {e})") from e
    return Model(pipeline=pipeline, card=card, path=folder)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def classify_records(records: Iterable[dict[str, Any]], *, model: Model, batch_size: int = BATCH_SIZE) -> Iterator[dict[str, Any]]:
    """Add ``labels`` and ``scores`` to each record (which needs a ``text``), in batches."""
    for batch in _batches(records, batch_size):
        scores = model.predict_proba([record["text"] for record in batch])
        for record, row in zip(batch, scores, strict=True):
            labels, label_scores = decide(row, model.thresholds)
            yield {**record, "labels": labels, "scores": label_scores}


def classify(sentences: Iterable[Sentence], *, model: Model, batch_size: int = BATCH_SIZE) -> Iterator[ClassifiedSentence]:
    """Classify sentences in batches, keeping their order."""
    for record in classify_records((s.model_dump() for s in sentences), model=model, batch_size=batch_size):
        yield ClassifiedSentence.model_validate(record)


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

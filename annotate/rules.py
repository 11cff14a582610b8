"""Keyword rules: a baseline to beat, and pre-annotations before any model is trained.

The rules live in ``schemas/rules.toml``: for each label, English and Chinese
regular expressions. A sentence gets a label when one of its patterns matches;
the score is ``hits / (hits + 1)``, so one matching pattern gives 0.5 (the
decision threshold) and each further one adds confidence. :func:`rules_model`
wraps the rules as a :class:`~annotate.classify.Model`, so ``classify``,
``export`` and ``studio push`` use them exactly like a trained model, with
``rules-<hash of the file>`` as the model id and prediction ``model_version``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .classify import Model, decide
from .errors import InputError
from .labels import LABELS
from .schemas import SCHEMA_DIR, SCHEMA_VERSION, ModelCard, Recipe

RULES_PATH = SCHEMA_DIR / "rules.toml"
RULE_LANGS = ("en", "zh")
RULES_THRESHOLD = 0.5


@dataclass(frozen=True)
class KeywordRules:
    """Compiled rules: per label, the patterns of every language."""

    patterns: dict[str, tuple[re.Pattern[str], ...]]
    version: str
    path: Path

    @property
    def thresholds(self) -> NDArray[Any]:
        return np.full(len(LABELS), RULES_THRESHOLD)

    def hits(self, text: str) -> NDArray[Any]:
        """How many distinct patterns of each label match ``text``, in :data:`LABELS` order."""
        return np.array([sum(1 for pattern in self.patterns[label] if pattern.search(text)) for label in LABELS], dtype=float)

    def matched(self, text: str) -> dict[str, list[str]]:
        """The patterns that match ``text``, per label (labels without a match are left out)."""
        found = {label: [p.pattern for p in self.patterns[label] if p.search(text)] for label in LABELS}
        return {label: patterns for label, patterns in found.items() if patterns}

    def predict_proba(self, texts: Sequence[str], neighbours: Sequence[tuple[str, str]] | None = None) -> NDArray[Any]:
        """An ``(n, 4)`` array of rule scores, ``hits / (hits + 1)``; each sentence is judged alone (``neighbours`` are not read)."""
        if not len(texts):
            return np.zeros((0, len(LABELS)))
        hits = np.vstack([self.hits(text) for text in texts])
        return hits / (hits + 1.0)

    def predict(self, texts: Sequence[str], neighbours: Sequence[tuple[str, str]] | None = None) -> list[tuple[list[str], dict[str, float]]]:
        """``(labels, scores)`` for each text, like :meth:`annotate.classify.Model.predict` (``neighbours`` are not read)."""
        return [decide(row, self.thresholds) for row in self.predict_proba(texts)]


def load_rules(path: Path | None = None) -> KeywordRules:
    """Read and compile a rules file (default: ``schemas/rules.toml``).

    Raises
    ------
    InputError
        The file cannot be read, is not TOML, lacks a label, names an unknown
        label or language, or holds a pattern that is not a regular expression.
    """
    path = Path(path) if path is not None else RULES_PATH
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the rules ({e.strerror})", path=path) from e
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise InputError(f"not a valid TOML rules file ({e})", path=path) from e
    unknown = sorted(set(document) - set(LABELS))
    if unknown:
        raise InputError(f"unknown label {unknown[0]!r} (expected one of {', '.join(LABELS)})", path=path)
    patterns: dict[str, tuple[re.Pattern[str], ...]] = {}
    for label in LABELS:
        section = document.get(label)
        if not isinstance(section, dict) or not section:
            raise InputError(f"no rules for label {label!r}; add a [{label}] table with en/zh pattern lists", path=path)
        compiled = []
        for lang, items in section.items():
            if lang not in RULE_LANGS:
                raise InputError(f"{label}.{lang}: unknown language (expected {' or '.join(RULE_LANGS)})", path=path)
            if not isinstance(items, list) or not all(isinstance(item, str) and item for item in items):
                raise InputError(f"{label}.{lang}: expected a list of non-empty pattern strings", path=path)
            for position, item in enumerate(items):
                try:
                    compiled.append(re.compile(item, re.IGNORECASE))
                except re.error as e:
                    raise InputError(f"{label}.{lang}[{position}]: not a regular expression ({e})", path=path) from e
        patterns[label] = tuple(compiled)
    return KeywordRules(patterns=patterns, version=f"rules-{hashlib.sha256(raw).hexdigest()[:12]}", path=path)


def rules_model(rules: KeywordRules | None = None) -> Model:
    """The rules dressed as a :class:`~annotate.classify.Model` whose id is their version."""
    rules = rules if rules is not None else load_rules()
    card = ModelCard(
        model_id=rules.version,
        schema_version=SCHEMA_VERSION,
        labels=list(LABELS),
        thresholds={label: RULES_THRESHOLD for label in LABELS},
        metrics={},
        training_data_sha256="",
        training_sentences=0,
        label_counts={label: 0 for label in LABELS},
        library_versions={},
        created="",
        model_sha256=rules.version.removeprefix("rules-"),
        model_file=rules.path.name,
        recipe=Recipe(encoder_weight=0, context_weight=0, tuned_weight=0, article_context=False),
    )
    return Model(pipeline=rules, card=card, path=rules.path)

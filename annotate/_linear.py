"""Score a few sentences with our model using numpy only, for a quick start.

Importing scikit-learn and loading with skops takes 2-3 s here, far longer than
scoring one article. Our model (hashed word n-grams and TF-IDF, plus the
sentence encoder's block, one logistic regression per label) is simple enough
to apply from its arrays: this module reads them from the already hash-checked
``.skops`` file (JSON and ``.npy`` entries of a zip; nothing is unpickled or
imported by name) and computes the same probabilities. It accepts exactly that
model and returns ``None`` for any other, so callers fall back to the full
loader. Pure-Python hashing makes it slow per sentence: it is meant for small
inputs only.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .encoder import DIMENSIONS, Encoder, dense_rows

_HASHING_PARAMS = {
    "input": "content",
    "encoding": "utf-8",
    "decode_error": "strict",
    "strip_accents": None,
    "preprocessor": None,
    "tokenizer": None,
    "analyzer": "word",
    "lowercase": True,
    "stop_words": None,
    "binary": False,
    "norm": None,
    "alternate_sign": False,
}
_MASK = 0xFFFFFFFF


class _NotOurPipeline(Exception):
    """The file holds something other than the pipeline this module can apply."""


@dataclass(frozen=True)
class LinearPipeline:
    """Hashed word n-grams -> TF-IDF (l2) [+ encoder block] -> one logistic regression per label, as plain arrays."""

    token_pattern: re.Pattern[str]
    ngram_range: tuple[int, int]
    n_features: int
    sublinear_tf: bool
    idf: NDArray[Any]
    coef: NDArray[Any]  # (labels, n_features)
    intercept: NDArray[Any]  # (labels,)
    encoder_coef: NDArray[Any] | None = None  # (labels, encoder dimensions [x2 with context]), already scaled by the blocks' weights
    encoder: Encoder | None = None
    context: bool = False

    def predict_proba(self, texts: Sequence[str], neighbours: Sequence[tuple[str, str]] | None = None) -> NDArray[Any]:
        """An ``(n, labels)`` array of probabilities, as the scikit-learn pipeline gives them."""
        rows, columns, counts = [], [], []
        for row, text in enumerate(texts):
            for column, count in sorted(Counter(self._hash(feature) for feature in self._features(text)).items()):
                rows.append(row)
                columns.append(column)
                counts.append(count)
        row_ids = np.asarray(rows, dtype=np.intp)
        column_ids = np.asarray(columns, dtype=np.intp)
        data = np.asarray(counts, dtype=np.float64)
        if self.sublinear_tf:
            np.log(data, data)
            data += 1.0
        data *= self.idf[column_ids]
        norms = np.sqrt(np.bincount(row_ids, weights=data * data, minlength=len(texts)))
        data /= norms[row_ids]
        scores = np.empty((len(texts), len(self.intercept)))
        for label, (weights, intercept) in enumerate(zip(self.coef, self.intercept, strict=True)):
            scores[:, label] = np.bincount(row_ids, weights=data * weights[column_ids], minlength=len(texts)) + intercept
        if self.encoder_coef is not None and self.encoder is not None:
            scores += dense_rows(list(texts), neighbours, encoder=self.encoder, context=self.context).astype(np.float64) @ self.encoder_coef.T
        return 1.0 / (1.0 + np.exp(-scores))

    def _features(self, text: str) -> list[str]:
        tokens = self.token_pattern.findall(text.lower())
        low, high = self.ngram_range
        features = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            features.extend(" ".join(tokens[start : start + n]) for start in range(len(tokens) - n + 1))
        return features

    def _hash(self, feature: str) -> int:
        value = murmurhash3_32(feature.encode("utf-8"))
        if value == -(1 << 31):
            return (2147483647 - (self.n_features - 1)) % self.n_features
        return abs(value) % self.n_features


def murmurhash3_32(data: bytes, seed: int = 0) -> int:
    """MurmurHash3 x86 32-bit, signed: the hash scikit-learn's HashingVectorizer uses."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    length = len(data)
    value = seed & _MASK
    whole = length & ~3
    for start in range(0, whole, 4):
        block = int.from_bytes(data[start : start + 4], "little")
        block = (block * c1) & _MASK
        block = ((block << 15) | (block >> 17)) & _MASK
        value ^= (block * c2) & _MASK
        value = ((value << 13) | (value >> 19)) & _MASK
        value = (value * 5 + 0xE6546B64) & _MASK
    tail = data[whole:]
    if tail:
        block = int.from_bytes(tail, "little")
        block = (block * c1) & _MASK
        block = ((block << 15) | (block >> 17)) & _MASK
        value ^= (block * c2) & _MASK
    value ^= length
    value ^= value >> 16
    value = (value * 0x85EBCA6B) & _MASK
    value ^= value >> 13
    value = (value * 0xC2B2AE35) & _MASK
    value ^= value >> 16
    return value - (1 << 32) if value & 0x80000000 else value


def linear_pipeline(data: bytes, *, labels: int, encoder_weight: float = 0.0, context_weight: float = 0.0) -> LinearPipeline | None:
    """The model in a ``.skops`` file's bytes as a :class:`LinearPipeline`, or ``None`` if it is any other.

    ``encoder_weight`` and ``context_weight`` are the card's: above 0, the
    regressions also read the encoder's block and the context block.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return _read(archive, labels, encoder_weight, context_weight)
    except (_NotOurPipeline, zipfile.BadZipFile, KeyError, ValueError, TypeError, IndexError, re.error):
        return None


def _read(archive: zipfile.ZipFile, labels: int, encoder_weight: float, context_weight: float) -> LinearPipeline:
    root = json.loads(archive.read("schema.json"))
    _expect(root.get("__loader__") == "DictNode" and root.get("__class__") == "dict")
    parts = dict(root["content"])
    _expect(sorted(parts) == ["classifiers", "ngrams"])
    steps = [_items(step) for step in _items(_attributes(parts["ngrams"], "sklearn.pipeline", "Pipeline")["steps"])]
    _expect([_value(name) for name, _ in steps] == ["words", "tfidf"])
    words = _attributes(steps[0][1], "sklearn.feature_extraction.text", "HashingVectorizer")
    _expect(all(_value(words[name]) == expected for name, expected in _HASHING_PARAMS.items()))
    _expect(words["dtype"]["__module__"] == "numpy" and words["dtype"]["__class__"] == "float64")
    pattern = re.compile(_value(words["token_pattern"]))
    _expect(pattern.groups == 0)
    low, high = (_value(item) for item in _items(words["ngram_range"]))
    tfidf = _attributes(steps[1][1], "sklearn.feature_extraction.text", "TfidfTransformer")
    _expect(_value(tfidf["norm"]) == "l2" and _value(tfidf["use_idf"]) is True)
    estimators = [_attributes(node, "sklearn.linear_model._logistic", "LogisticRegression") for node in _items(parts["classifiers"])]
    _expect(len(estimators) == labels)
    n_features = _value(words["n_features"])
    blocks = np.array([encoder_weight, context_weight][: 2 if context_weight else 1 if encoder_weight else 0])
    width = n_features + DIMENSIONS * len(blocks)
    idf = _array(archive, tfidf["idf_"])
    coef = np.vstack([_array(archive, estimator["coef_"]).reshape(-1) for estimator in estimators]).astype(np.float64)
    intercept = np.concatenate([_array(archive, estimator["intercept_"]).reshape(-1) for estimator in estimators]).astype(np.float64)
    _expect(all(_array(archive, estimator["classes_"]).tolist() == [0, 1] for estimator in estimators))
    _expect(idf.shape == (n_features,) and coef.shape == (labels, width) and intercept.shape == (labels,))
    encoder_coef = coef[:, n_features:] * np.repeat(blocks, DIMENSIONS) if encoder_weight else None
    return LinearPipeline(
        pattern, (low, high), n_features, _value(tfidf["sublinear_tf"]) is True, idf, coef[:, :n_features], intercept,
        encoder_coef, Encoder() if encoder_weight else None, bool(context_weight),
    )  # fmt: skip


def _expect(condition: bool) -> None:
    if not condition:
        raise _NotOurPipeline


def _attributes(node: dict[str, Any], module: str, name: str) -> dict[str, Any]:
    _expect(node.get("__module__") == module and node.get("__class__") == name and node.get("__loader__") == "ObjectNode")
    state = node["content"]
    _expect(state.get("__loader__") == "DictNode")
    return dict(state["content"])


def _items(node: dict[str, Any]) -> list[Any]:
    _expect(node.get("__loader__") in ("ListNode", "TupleNode"))
    return list(node["content"])


def _value(node: dict[str, Any]) -> Any:
    _expect(node.get("__loader__") == "JsonNode")
    return json.loads(node["content"])


def _array(archive: zipfile.ZipFile, node: dict[str, Any]) -> NDArray[Any]:
    _expect(node.get("__loader__") == "NdArrayNode" and node.get("type") == "numpy")
    array = np.load(io.BytesIO(archive.read(node["file"])), allow_pickle=False)
    _expect(array.dtype.kind in "fiu")
    return np.asarray(array)

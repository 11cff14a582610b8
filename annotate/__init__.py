"""Tag sentences of health-care AI news with four labels, with Label Studio in the loop.

The public names below are imported on first use, so that ``annotate classify``
does not pay for modules it does not need.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("annotate")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0"

_EXPORTS = {
    "AnnotateError": "errors",
    "Article": "schemas",
    "ArticleDigest": "schemas",
    "ClassifiedSentence": "schemas",
    "DatasetError": "errors",
    "DependencyError": "errors",
    "InputError": "errors",
    "LABELS": "labels",
    "LabeledSentence": "schemas",
    "Model": "classify",
    "ModelCard": "schemas",
    "ModelError": "errors",
    "Sentence": "schemas",
    "StudioError": "errors",
    "digests": "classify",
    "import_export": "dataset",
    "load_labels": "dataset",
    "load_model": "classify",
    "read_articles": "ingest",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'annotate' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)

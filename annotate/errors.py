"""Exceptions raised by the library; the CLI turns them into one-line errors.

    AnnotateError
    ├── InputError          bad input file or value (CLI exit code 2)
    │   └── SchemaError     a row that does not match its data contract
    ├── StudioError         Label Studio refused or failed a request
    │   ├── StudioConnectionError
    │   └── StudioAuthError
    ├── DatasetError        a label set that cannot be built or read
    ├── ModelError          a model that cannot be trained, loaded or trusted
    └── DependencyError     a package the toolkit needs is missing or broken

``str(error)`` is always the whole one-line message.
"""

from __future__ import annotations

from pathlib import Path


class AnnotateError(Exception):
    """Base class of every error the toolkit raises on purpose."""


class InputError(AnnotateError):
    """Input that cannot be read or does not make sense."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class SchemaError(InputError):
    """A row that does not match its data contract."""


class StudioError(AnnotateError):
    """Label Studio refused or failed a request."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StudioConnectionError(StudioError):
    """Label Studio cannot be reached."""


class StudioAuthError(StudioError):
    """Label Studio rejected the API key."""


class DatasetError(AnnotateError):
    """A label set that cannot be built or read."""


class ModelError(AnnotateError):
    """A model that cannot be trained, loaded or trusted."""


class DependencyError(AnnotateError):
    """A package the toolkit needs is missing or broken; the message says what to install."""

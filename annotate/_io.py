"""File helpers: atomic writes and streaming JSONL."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from .errors import InputError


@contextlib.contextmanager
def atomic_write(path: Path, *, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place.

    A crash or Ctrl-C before the block ends leaves any old ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def dumps_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)


def read_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; ``-`` reads stdin."""
    if str(path) == "-":
        yield from _parse_jsonl(sys.stdin.buffer, "<stdin>")
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, also when the consumer stops early
    except OSError as e:
        raise InputError(f"cannot open ({e.strerror})", path=path) from e
    with handle:
        yield from _parse_jsonl(handle, path)


def _parse_jsonl(handle: IO[bytes], name: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, raw in enumerate(handle, start=1):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise InputError(f"not valid JSON ({e.args[0].split(':')[0]})", path=name, line=number) from e
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {type(record).__name__}", path=name, line=number)
        yield number, record


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    """Atomically write ``records`` as JSONL; return how many were written."""
    count = 0
    with atomic_write(path, mode="wb") as handle:
        for record in records:
            handle.write(dumps_line(record))
            count += 1
    return count


def _flat_row(record: dict[str, Any]) -> dict[str, Any]:
    """A record with list values joined by ';' and dict values spread into ``key_name`` columns."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            row.update({f"{key}_{name}": item for name, item in value.items()})
        elif isinstance(value, list):
            row[key] = ";".join(map(str, value))
        else:
            row[key] = value
    return row


OUTPUT_FORMATS = ("jsonl", "csv", "parquet")


def format_for(path: Path | str) -> str:
    """The output format named by a file's suffix (JSONL unless .csv or .parquet)."""
    suffix = Path(str(path)).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet"}.get(suffix, "jsonl")


def write_records(path: Path | str, records: Iterable[dict[str, Any]], *, fmt: str | None = None, batch_size: int = 65536) -> int:
    """Stream records to JSONL, CSV or Parquet (``-`` is stdout, JSONL/CSV only); atomic for files."""
    fmt = fmt or format_for(path)
    if str(path) == "-":
        if fmt == "parquet":
            raise InputError("Parquet cannot be written to stdout; give a file name with -o")
        return _write_stream(sys.stdout.buffer, records, fmt)
    with atomic_write(Path(path), mode="wb") as handle:
        if fmt == "parquet":
            return _write_parquet(handle, records, batch_size)
        return _write_stream(handle, records, fmt)


def _write_stream(handle: IO[bytes], records: Iterable[dict[str, Any]], fmt: str) -> int:
    import csv

    count = 0
    if fmt == "jsonl":
        for record in records:
            handle.write(dumps_line(record))
            count += 1
        handle.flush()
        return count
    text = io.TextIOWrapper(handle, encoding="utf-8", newline="", write_through=True)
    writer: csv.DictWriter[str] | None = None
    for record in records:
        row = _flat_row(record)
        if writer is None:
            writer = csv.DictWriter(text, fieldnames=list(row), extrasaction="ignore")
            writer.writeheader()
        writer.writerow(row)
        count += 1
    text.flush()
    text.detach()
    return count


def _write_parquet(handle: IO[bytes], records: Iterable[dict[str, Any]], batch_size: int) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    count = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        nonlocal writer
        table = pa.Table.from_pylist(batch, schema=writer.schema if writer else None)
        if writer is None:
            writer = pq.ParquetWriter(handle, table.schema)
        writer.write_table(table)
        batch.clear()

    for record in records:
        batch.append(record)
        count += 1
        if len(batch) >= batch_size:
            flush()
    if batch or writer is None:
        flush()
    assert writer is not None
    writer.close()
    return count

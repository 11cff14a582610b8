"""File helpers: atomic writes and streaming JSONL."""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import orjson

from .errors import InputError

T = TypeVar("T")


# Temporary files of atomic writes older than this process were left by a
# process that was killed (SIGKILL, power loss) before it could remove them.
_PROCESS_STARTED = time.time()
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_write(path: Path, *, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path`` and rename it into place.

    A crash or Ctrl-C before the block ends leaves any old ``path`` untouched.
    The new file keeps the old file's permissions (else the umask's), and
    temporary files that a killed process left beside ``path`` are removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private (0600); the result should be an ordinary file.
        try:
            os.fchmod(fd, stat.S_IMODE(path.stat().st_mode))
        except FileNotFoundError:
            os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding, newline=None if "b" in mode else "") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_directory(path.parent)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.NAME.PID.*.tmp`` files beside ``path`` whose writer is gone.

    Stale means older than this process and written by a process id that no
    longer runs here, so a slow concurrent writer keeps its file.
    """
    if os.name != "posix":  # os.kill(pid, 0) would end the process on Windows
        return
    prefix = f".{path.name}."
    for stale in path.parent.glob(f"{glob.escape(prefix)}*.tmp"):
        pid = stale.name[len(prefix) :].split(".")[0]
        with contextlib.suppress(OSError):  # another process may be removing it too
            if stale.stat().st_mtime < _PROCESS_STARTED and not (pid.isdigit() and _running(int(pid))):
                stale.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _fsync_directory(folder: Path) -> None:
    # Makes the rename itself survive a power loss; not possible on every platform.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def dumps_line(record: dict[str, Any]) -> bytes:
    return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY)


def read_jsonl(path: Path | str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line; ``-`` reads stdin."""
    if str(path) == "-":
        yield from parse_jsonl(sys.stdin.buffer, "<stdin>")
        return
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, also when the consumer stops early
    except OSError as e:
        raise InputError(f"cannot open ({e.strerror})", path=path) from e
    with handle:
        yield from parse_jsonl(handle, path)


def read_jsonl_range(path: Path | str, *, start: int, end: int, first_line: int) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`read_jsonl` for the whole lines in bytes ``[start, end)`` of a file, numbered from ``first_line``.

    ``start`` and ``end`` must fall on line starts (see :func:`line_ranges`).
    """
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as e:
        raise InputError(f"cannot open ({e.strerror})", path=path) from e
    with handle:
        handle.seek(start)
        yield from parse_jsonl(_lines_before(handle, end - start), path, first_line=first_line)


def _lines_before(handle: IO[bytes], size: int) -> Iterator[bytes]:
    while size > 0 and (line := handle.readline()):
        size -= len(line)
        yield line


def line_ranges(
    path: Path | str, *, target_bytes: int, group: Callable[[bytes], object] | None = None
) -> Iterator[tuple[int, int, int]]:
    """Split a file into ``(start, end, first_line)`` byte ranges of whole lines, each about ``target_bytes``.

    Reads the file once, a block at a time, to find line ends and count lines.
    With ``group``, a range never ends between two consecutive lines of one
    group (lines for which ``group`` gives the same value, other than None).
    """
    block = 1 << 20
    with open(path, "rb") as handle:
        start, line = 0, 1
        while True:
            size, newlines, data = 0, 0, b""
            while size < target_bytes and (data := handle.read(min(block, target_bytes - size))):
                size += len(data)
                newlines += data.count(b"\n")
            rest = handle.readline()
            size += len(rest)
            newlines += rest.count(b"\n")
            if not size:
                return
            key = group(data[data.rfind(b"\n") + 1 :] + rest) if group is not None else None
            while key is not None:
                position = handle.tell()
                following = handle.readline()
                if not following or group(following) != key:  # type: ignore[misc]
                    handle.seek(position)
                    break
                size += len(following)
                newlines += following.count(b"\n")
            yield start, start + size, line
            start, line = start + size, line + newlines


def parse_jsonl(lines: Iterable[bytes | str], name: Path | str, *, first_line: int = 1) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line, naming file and line on bad JSON."""
    for number, raw in enumerate(lines, start=first_line):
        if not raw.strip():
            continue
        try:
            record = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise InputError(f"not valid JSON ({e.args[0].split(':')[0]})", path=name, line=number) from e
        if not isinstance(record, dict):
            raise InputError(f"expected a JSON object, got {type(record).__name__}", path=name, line=number)
        yield number, record


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last may be shorter); ``itertools.batched`` from Python 3.12."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


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
# Rows per Parquet row group: big enough for good compression, small enough to keep memory flat.
PARQUET_BATCH_ROWS = 16384


def format_for(path: Path | str) -> str:
    """The output format named by a file's suffix (JSONL unless .csv or .parquet)."""
    suffix = Path(str(path)).suffix.lower()
    return {".csv": "csv", ".parquet": "parquet"}.get(suffix, "jsonl")


def write_records(path: Path | str, records: Iterable[dict[str, Any]], *, fmt: str | None = None, batch_size: int = PARQUET_BATCH_ROWS) -> int:
    """Stream records to JSONL, CSV or Parquet (``-`` is stdout, JSONL/CSV only); atomic for files."""
    with open_records(path, fmt=fmt, batch_size=batch_size) as writer:
        writer.write_many(records)
    return writer.count


@contextlib.contextmanager
def open_records(path: Path | str, *, fmt: str | None = None, batch_size: int = PARQUET_BATCH_ROWS) -> Iterator[RecordWriter]:
    """A :class:`RecordWriter` for ``path`` (``-`` is stdout, JSONL/CSV only); atomic for files.

    Several can be open at once, so one pass over the input can feed two outputs.
    """
    fmt = fmt or format_for(path)
    if fmt not in OUTPUT_FORMATS:
        raise InputError(f"unknown output format {fmt!r}; use one of {', '.join(OUTPUT_FORMATS)}")
    if str(path) == "-":
        if fmt == "parquet":
            raise InputError("Parquet cannot be written to stdout; give a file name with -o")
        writer = RecordWriter(sys.stdout.buffer, fmt, batch_size=batch_size)
        yield writer
        writer.close()
        return
    with atomic_write(Path(path), mode="wb") as handle:
        writer = RecordWriter(handle, fmt, batch_size=batch_size)
        yield writer
        writer.close()


class RecordWriter:
    """Writes records one at a time as JSONL, CSV (lists joined by ';', dicts spread) or Parquet.

    Parquet rows are buffered ``batch_size`` at a time (one row group each);
    the first batch fixes the columns and their types.
    """

    def __init__(self, handle: IO[bytes], fmt: str, *, batch_size: int = PARQUET_BATCH_ROWS) -> None:
        self.handle = handle
        self.fmt = fmt
        self.count = 0
        self._batch_size = batch_size
        self._pending: list[dict[str, Any]] = []
        self._csv: Any = None
        self._csv_text: io.TextIOWrapper | None = None
        self._parquet: Any = None

    def write(self, record: dict[str, Any]) -> None:
        self.count += 1
        if self.fmt == "jsonl":
            self.handle.write(dumps_line(record))
        elif self.fmt == "csv":
            self._write_csv(record)
        else:
            self._pending.append(record)
            if len(self._pending) >= self._batch_size:
                self._flush_parquet()

    def write_many(self, records: Iterable[dict[str, Any]]) -> None:
        if self.fmt != "jsonl":
            for record in records:
                self.write(record)
            return
        write = self.handle.write
        for record in records:
            write(dumps_line(record))
            self.count += 1

    def close(self) -> None:
        """Flush what is buffered (the handle itself stays open)."""
        if self.fmt == "parquet":
            if self._pending or self._parquet is None:
                self._flush_parquet()
            self._parquet.close()
        elif self._csv_text is not None:
            self._csv_text.flush()
            self._csv_text.detach()
        self.handle.flush()

    def _write_csv(self, record: dict[str, Any]) -> None:
        row = _flat_row(record)
        if self._csv is None:
            import csv

            self._csv_text = io.TextIOWrapper(self.handle, encoding="utf-8", newline="", write_through=True)
            self._csv = csv.DictWriter(self._csv_text, fieldnames=list(row), extrasaction="ignore")
            self._csv.writeheader()
        self._csv.writerow(row)

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pylist(self._pending, schema=self._parquet.schema if self._parquet else None)
        if self._parquet is None:
            self._parquet = pq.ParquetWriter(self.handle, table.schema)
        self._parquet.write_table(table)
        self._pending.clear()

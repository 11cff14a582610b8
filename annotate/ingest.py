"""Read articles from text, Markdown, HTML, JSONL and CSV files, and sentences from JSONL.

Every article reader yields :class:`~annotate.schemas.Article` objects; bad
input raises :class:`~annotate.errors.InputError` naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ._io import parse_jsonl, read_jsonl
from .errors import DependencyError, InputError, SchemaError
from .layout import Kind, line_kind, strip_bullet, units
from .schemas import Article, Sentence
from .segment import detect_lang, sentence_id

TEXT_SUFFIXES = {".txt", ".text", ".md", ".markdown"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
CSV_SUFFIXES = {".csv"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES | CSV_SUFFIXES
ARTICLE_FIELDS = ("id", "title", "url", "date", "text")
SENTENCE_FIELDS = frozenset(Sentence.model_fields)
# Non-UTF-8 encodings we claim to read; limiting the detector to these keeps
# it from guessing exotic code pages for short Chinese texts.
FALLBACK_ENCODINGS = ["gb18030", "big5", "utf_16", "cp1252"]
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+")
_WHITESPACE = re.compile(r"\s+")
# Compressed and other binary formats by their first bytes: refused without
# decompressing them (a zip bomb renamed to .txt is only a few kilobytes).
BINARY_SIGNATURES = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "zip",
    b"PK\x05\x06": "zip",
    b"BZh91AY&SY": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"Rar!\x1a\x07": "rar",
    b"%PDF-": "PDF",
    b"\x7fELF": "ELF executable",
}


def read_articles(paths: Iterable[Path | str]) -> Iterator[Article]:
    """Yield the articles in ``paths``: files, directories (recursively) or ``-`` for stdin."""
    for path in paths:
        if str(path) == "-":
            yield from _read_stdin()
            continue
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
            for file in files:
                yield from read_file(file)
        elif path.exists():
            yield from read_file(path)
        else:
            raise InputError("no such file or directory", path=path)


def read_file(path: Path) -> Iterator[Article]:
    """Yield the articles of one file, chosen by its suffix."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise InputError(f"unsupported file type {suffix or '(none)'}; use .txt, .md, .html, .jsonl or .csv", path=path)
    try:
        # A FIFO or a link to /dev/zero would block or never end.
        if not stat.S_ISREG(path.stat().st_mode):
            raise InputError("not a regular file", path=path)
        data = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read ({e.strerror})", path=path) from e
    yield from _parse(data, kind=_kind(suffix), name=str(path))


def _kind(suffix: str) -> str:
    if suffix in HTML_SUFFIXES:
        return "html"
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in CSV_SUFFIXES:
        return "csv"
    return "text"


def _read_stdin() -> Iterator[Article]:
    data = sys.stdin.buffer.read()
    head = data.lstrip()[:1]
    kind = "jsonl" if head == b"{" else "html" if head == b"<" else "text"
    yield from _parse(data, kind=kind, name="<stdin>")


def _parse(data: bytes, *, kind: str, name: str) -> Iterator[Article]:
    text = decode(data, name=name)
    if not text.strip():
        raise InputError("empty file: no text to read", path=name)
    if kind == "html":
        yield article_from_html(text, source=name)
    elif kind == "jsonl":
        yield from _articles_from_jsonl(text, name)
    elif kind == "csv":
        yield from _articles_from_csv(text, name)
    else:
        yield article_from_text(text, source=name)


def decode(data: bytes, *, name: str = "<bytes>") -> str:
    """Decode UTF-8, GB18030/GBK, Big5, UTF-16 or cp1252 bytes; refuse binary data."""
    for signature, kind in BINARY_SIGNATURES.items():
        if data.startswith(signature):
            raise InputError(f"binary file, not text ({kind} data)", path=name)
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as e:
            raise InputError(f"not valid UTF-16 ({e.reason} at byte {e.start})", path=name) from e
    if b"\x00" in data[:8192]:
        raise InputError("binary file, not text", path=name)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    import charset_normalizer  # imported here: only non-UTF-8 input pays for it

    best = charset_normalizer.from_bytes(data, cp_isolation=FALLBACK_ENCODINGS).best()
    if best is None:
        raise InputError("cannot detect the text encoding; save the file as UTF-8", path=name)
    return str(best)


def article_id_for(*, explicit: str = "", url: str = "", text: str = "") -> str:
    """A stable article id: the given id, else a hash of the URL, else of the text."""
    if explicit:
        return explicit
    # Same as " ".join(text.split()) without a list of every word of a huge text.
    basis = url if url else _WHITESPACE.sub(" ", text).strip()
    prefix = "u" if url else "a"
    return prefix + hashlib.sha1(basis.encode("utf-8")).hexdigest()[:12]


def article_from_text(
    text: str, *, source: str = "", title: str | None = None, url: str = "", date: str = "", explicit_id: str = ""
) -> Article:
    """An article from plain text; with ``title=None`` the first line (or ``# `` heading) is the title.

    The body is laid out into units separated by blank lines (see
    :func:`annotate.layout.units`): hard-wrapped lines joined, page
    elements kept apart, furniture left out. Leading furniture ("Skip to
    content", a dateline) is never taken for the title.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    id_title, id_body = (_split_title(text) if title is None else (title, text))
    if title is None:
        title, text = _split_title(_without_leading_furniture(text))
    return Article(
        # The id is taken from the text as it was before layout existed, so articles keep their ids.
        article_id=article_id_for(explicit=explicit_id, url=url, text=id_title + "\n" + _without_markdown(id_body)),
        title=title,
        text="\n\n".join(units(_without_markdown(text))),
        source=source,
        url=url,
        date=date,
    )


def _split_title(text: str) -> tuple[str, str]:
    first, _, rest = text.strip().partition("\n")
    if _MARKDOWN_HEADING.match(first) or (rest.strip() and len(first) <= 200 and not first.rstrip().endswith((".", "。"))):
        return _MARKDOWN_HEADING.sub("", first).strip(), rest
    return "", text


def _without_markdown(text: str) -> str:
    return "\n".join(_MARKDOWN_HEADING.sub("", line) for line in text.strip().split("\n"))


def _without_leading_furniture(text: str) -> str:
    lines = text.strip().split("\n")
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped and line_kind(strip_bullet(stripped)[0]) not in (Kind.FURNITURE, Kind.DATE):
            return "\n".join(lines[number:])
    return text


def article_from_html(html: str, *, source: str = "") -> Article:
    """The main article of an HTML page, without navigation and page furniture."""
    try:
        import trafilatura  # imported here: it is slow to import and only HTML needs it
    except ImportError as e:
        # An older pip can leave out lxml_html_clean, which trafilatura needs through justext.
        reason = str(e).split("\n", 1)[0]
        raise DependencyError(f"reading HTML needs trafilatura and lxml_html_clean ({reason}); install them: pip install trafilatura lxml_html_clean") from e
    extracted = trafilatura.extract(
        html, output_format="json", with_metadata=True, include_comments=False, include_tables=False, favor_precision=True
    )
    document: dict[str, Any] = json.loads(extracted) if extracted else {}
    text = document.get("text") or ""
    if not text.strip():
        raise InputError("no article text found in the HTML page", path=source)
    # trafilatura puts one paragraph per line; the layout keeps each apart and cuts bullets and furniture.
    body = "\n\n".join(units("\n\n".join(text.split("\n"))))
    url = document.get("source") or ""
    title = document.get("title") or ""
    return Article(
        article_id=article_id_for(url=url, text=title + "\n" + body),
        title=title,
        text=body,
        source=source,
        url=url,
        date=document.get("date") or "",
    )


def article_from_record(record: dict[str, Any], *, source: str, line: int) -> Article:
    """An article from one export row: ``text`` required; ``id``, ``title``, ``url``, ``date`` optional."""
    values: dict[str, str] = {}
    for field in ARTICLE_FIELDS:
        value = record.get(field)
        if value is None:
            values[field] = ""
        elif isinstance(value, str):
            values[field] = value
        elif field == "id" and isinstance(value, int) and not isinstance(value, bool):
            values[field] = str(value)
        else:
            raise SchemaError(f"field {field!r} must be a string, got {type(value).__name__}", path=source, line=line)
    if not values["text"].strip():
        raise SchemaError("missing or empty 'text' field", path=source, line=line)
    return article_from_text(
        values["text"], source=f"{source}:{line}", title=values["title"], url=values["url"], date=values["date"], explicit_id=values["id"]
    )


def _articles_from_jsonl(text: str, name: str) -> Iterator[Article]:
    for number, record in parse_jsonl(text.split("\n"), name):
        yield article_from_record(record, source=name, line=number)


def _articles_from_csv(text: str, name: str) -> Iterator[Article]:
    csv.field_size_limit(1 << 30)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if reader.fieldnames is None or "text" not in reader.fieldnames:
        raise SchemaError("CSV header has no 'text' column", path=name, line=1)
    try:
        for row in reader:
            if None in row:
                raise SchemaError(f"row has {len(reader.fieldnames) + len(row[None])} fields, header has {len(reader.fieldnames)}", path=name, line=reader.line_num)
            yield article_from_record(row, source=name, line=reader.line_num)
    except csv.Error as e:
        raise InputError(f"malformed CSV ({e})", path=name, line=reader.line_num) from e


def read_sentences(path: Path | str) -> Iterator[Sentence]:
    """The sentences of a JSONL file (``-`` for stdin); see :func:`sentences_from_records`."""
    return sentences_from_records(read_jsonl(path), source=path)


def sentences_from_records(records: Iterable[tuple[int, dict[str, Any]]], *, source: Path | str) -> Iterator[Sentence]:
    """Sentences from ``(line, record)`` pairs: rows of ``annotate ingest``, or minimal rows with only ``text``.

    A missing field is derived as ``ingest`` would derive it for a one-sentence
    article: ``article_id`` from the text, ``sentence_id`` from the article id
    and the text (``id`` is taken as the sentence id), ``index`` counting the
    article's rows, ``paragraph`` 1, ``lang`` detected. Other fields are ignored.
    """
    seen: dict[str, dict[str, int]] = {}
    rows_per_article: dict[str, int] = {}
    for line, record in records:
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise SchemaError("each line needs a 'text' field with a non-empty string", path=source, line=line)
        fields = {name: value for name, value in record.items() if name in SENTENCE_FIELDS}
        if "sentence_id" not in fields and isinstance(record.get("id"), (str, int)) and not isinstance(record["id"], bool):
            fields["sentence_id"] = str(record["id"])
        flat = _WHITESPACE.sub(" ", text).strip()
        article = fields.setdefault("article_id", article_id_for(text=flat))
        key = str(article)
        fields.setdefault("sentence_id", sentence_id(key, flat, seen.setdefault(key, {})))
        fields.setdefault("index", rows_per_article.get(key, 0))
        rows_per_article[key] = rows_per_article.get(key, 0) + 1
        fields.setdefault("paragraph", 1)
        fields.setdefault("lang", detect_lang(text))
        try:
            yield Sentence.model_validate(fields)
        except ValidationError as e:
            error = e.errors()[0]
            raise SchemaError(f"{'.'.join(map(str, error['loc']))}: {error['msg']}", path=source, line=line) from e

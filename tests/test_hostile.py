"""Hostile and broken input: property tests over every reader, plus the classic bad files.

Every property test counts the cases it tried in ``HYPOTHESIS_EXAMPLES``; the
terminal summary prints them (see ``conftest.py``). The ``hostile`` settings
profile keeps the file under two minutes on two cores; set
``ANNOTATE_HOSTILE_PROFILE=thorough`` for a long local hunt.

A bad input must end in an ``InputError`` (one ``Error:`` line naming the
file, and the line where there is one; exit code 2), never in another
exception, a hang or unbounded memory.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annotate.dataset import labeled_from_export
from annotate.errors import InputError
from annotate.ingest import BINARY_SIGNATURES, article_from_html, article_from_record, article_from_text, decode, read_articles
from annotate.labels import LABELS
from annotate.schemas import Article
from annotate.segment import EN_WINDOW_CHARS, segment

from .conftest import HYPOTHESIS_EXAMPLES, HYPOTHESIS_REFUSED, ROOT

# derandomize: every run tries the same cases, so a failure in CI is a failure on any machine
# (the example database is off for the same reason); "thorough" hunts with fresh random cases.
settings.register_profile(
    "hostile",
    max_examples=400,
    derandomize=True,
    database=None,
    deadline=None,  # the first example pays for imports; hangs are caught by the timeout marks
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)
settings.register_profile("thorough", settings.get_profile("hostile"), max_examples=3000, derandomize=False)
HOSTILE = settings.get_profile(os.environ.get("ANNOTATE_HOSTILE_PROFILE", "hostile"))
pytestmark = pytest.mark.timeout(300)

WHITESPACE = re.compile(r"\s+")


def tried(name: str, *, refused: bool = False) -> None:
    HYPOTHESIS_EXAMPLES[f"test_hostile.py::{name}"] += 1
    if refused:
        HYPOTHESIS_REFUSED[f"test_hostile.py::{name}"] += 1


# --- strategies -------------------------------------------------------------------------

# Pieces that exercise the sentence rules far more often than random characters do.
NEWS_PIECES = [
    "The FDA", "cleared", "the tool", "Dr.", "Li", "Acme Inc.", "Co. Ltd.", "U.S.", "No. 3", "3.5", "(688289.SH)", "p.m.",
    ".", ". ", "!", "?", "...", "…", "……", "“", "”", "\"", "'", "(", ")", "[", "]", "（", "）", "「", "」", "《", "》",
    "医疗", "人工智能", "融资", "。", "！", "？", "，", "：", "Share this article", "SUBSCRIBE NOW", "00:00/00:00",
    " ", "  ", "\n", "\n\n", "\r\n", "\t", "\u3000", "\u00a0", "\x00", "\x0b", "\x1c", "\u2028", "\ufeff", "a", "Z", "7",
    "Ñandú", "Привет", "مرحبا", "שלום", "नमस्ते", "🙂", "e\u0301", "ﬁ",
]
news_text = st.lists(st.sampled_from(NEWS_PIECES), max_size=60).map("".join)
any_text = st.one_of(st.text(max_size=400), news_text, st.text(st.characters(codec="utf-8"), max_size=200))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


def check_sentences(article: Article) -> None:
    """The segmentation invariants."""
    sentences = segment(article)
    flat = WHITESPACE.sub(" ", article.text)
    ids = [s.sentence_id for s in sentences]
    assert len(set(ids)) == len(ids)
    assert ids == [s.sentence_id for s in segment(article)]
    for index, sentence in enumerate(sentences):
        assert sentence.text and sentence.text == sentence.text.strip()
        assert sentence.text in flat
        assert sentence.index == index and sentence.paragraph >= 1
        assert sentence.prev == (sentences[index - 1].text if index else "")
        assert sentence.next == (sentences[index + 1].text if index + 1 < len(sentences) else "")
    assert [s.paragraph for s in sentences] == sorted(s.paragraph for s in sentences)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def read_file_bytes(scratch: Path, data: bytes, suffix: str) -> list[Article]:
    path = scratch / f"input{suffix}"
    path.write_bytes(data)
    try:
        return list(read_articles([path]))
    except InputError as e:
        assert str(e).startswith(f"{path}:") and "\n" not in str(e)
        return []


# --- what the readers must accept ---------------------------------------------------------
# Each property test below may see a refusal only where these say the input is bad: a reader
# that refused everything would fail them.

REFUSALS = re.compile(
    r"^(binary file, not text( \(.+ data\))?|not valid UTF-16 \(.+\)|cannot detect the text encoding; save the file as UTF-8"
    r"|empty file: no text to read|no article text found in the HTML page)$"
)


def plain_text(data: bytes) -> str | None:
    """The text ``decode`` must return for bytes that are plainly text; None where it may refuse."""
    if data.startswith(tuple(BINARY_SIGNATURES)):
        return None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None  # other encodings are guessed, and a guess may fail


def record_problem(record: Any) -> bool:
    """True where ``article_from_record`` must refuse the row (the rules the README gives)."""
    if not isinstance(record, dict):
        return True
    for field in ("id", "title", "url", "date", "text"):
        value = record.get(field)
        if value is None or isinstance(value, str):
            continue
        if field == "id" and isinstance(value, int) and not isinstance(value, bool):
            continue
        return True
    return not isinstance(record.get("text"), str) or not record["text"].strip()


def jsonl_problem_line(lines: list[str]) -> int | None:
    """The first line of a JSONL file that must be refused, or None for a file that must be read."""
    for number, line in enumerate(lines, start=1):
        try:
            record = orjson.loads(line)  # the parser's own verdict on the JSON itself (NaN, lone surrogates)
        except orjson.JSONDecodeError:
            return number
        if record_problem(record):
            return number
    return None


# --- property tests -----------------------------------------------------------------------


@HOSTILE
@given(
    st.one_of(
        st.binary(max_size=3000),
        st.tuples(st.sampled_from([b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf", b"\x1f\x8b", b"PK\x03\x04", b"%PDF-"]), st.binary(max_size=500)).map(b"".join),
        st.tuples(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]), any_text).map(lambda pair: pair[1].encode(pair[0], errors="replace")),
    )
)
def test_decode_returns_text_or_refuses(data: bytes) -> None:
    expected = plain_text(data)
    try:
        text = decode(data, name="x.txt")
    except InputError as e:
        tried("test_decode_returns_text_or_refuses", refused=True)
        assert expected is None, f"plain text refused: {e}"
        assert str(e).startswith("x.txt: ") and REFUSALS.match(str(e).removeprefix("x.txt: ")), str(e)
    else:
        tried("test_decode_returns_text_or_refuses")
        assert isinstance(text, str)
        if expected is not None:
            assert text == expected


@HOSTILE
@given(any_text, st.sampled_from(["utf-8", "utf-8-sig", "gb18030", "big5", "utf-16", "cp1252"]), st.sampled_from([".txt", ".md", ".html"]))
def test_text_files_in_any_encoding_give_articles_or_one_error(scratch: Path, text: str, encoding: str, suffix: str) -> None:
    data = text.encode(encoding, errors="replace")
    articles = read_file_bytes(scratch, data, suffix)
    tried("test_text_files_in_any_encoding_give_articles_or_one_error", refused=not articles)
    readable = plain_text(data)
    if readable is not None and readable.strip() and suffix != ".html":
        assert len(articles) == 1, f"a plain {suffix} file in {encoding} was refused"
    for article in articles:
        check_sentences(article)


@HOSTILE
@given(any_text, st.one_of(st.none(), st.text(max_size=30)))
def test_segmentation_invariants(text: str, title: str | None) -> None:
    tried("test_segmentation_invariants")
    check_sentences(article_from_text(text, source="x.txt", title=title))


# Rows as an export would have them, beside the random ones, so that good files are common too.
good_rows = st.fixed_dictionaries(
    {"text": any_text.filter(str.strip)}, optional={"id": st.one_of(st.text(max_size=10), st.integers()), "title": any_text, "url": st.text(max_size=30), "other": json_values}
)


@HOSTILE
@given(st.lists(st.one_of(json_values, st.dictionaries(st.sampled_from(["id", "title", "url", "date", "text", "other"]), st.one_of(json_values, any_text), max_size=5), good_rows, good_rows), max_size=6))
def test_jsonl_rows_give_articles_or_an_error_with_the_line(scratch: Path, rows: list[Any]) -> None:
    lines = [json.dumps(row) for row in rows]
    path = scratch / "input.jsonl"
    path.write_bytes("\n".join(lines).encode())
    bad_line = jsonl_problem_line(lines)
    try:
        articles = list(read_articles([path]))
    except InputError as e:
        tried("test_jsonl_rows_give_articles_or_an_error_with_the_line", refused=True)
        message = str(e)
        assert "\n" not in message
        if not lines:
            assert message == f"{path}: empty file: no text to read"
        else:
            assert bad_line is not None, f"a good file was refused: {message}"
            assert message.startswith(f"{path}:{bad_line}: "), f"expected the error on line {bad_line}: {message}"
    else:
        tried("test_jsonl_rows_give_articles_or_an_error_with_the_line")
        assert lines and bad_line is None, f"line {bad_line} should have been refused"
        assert len(articles) == len(lines)
        for article in articles:
            check_sentences(article)


@HOSTILE
@given(st.lists(st.lists(any_text, min_size=1, max_size=4), min_size=1, max_size=5), st.booleans())
def test_csv_rows_give_articles_or_an_error(scratch: Path, rows: list[list[str]], with_text_header: bool) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text", "title"][: len(rows[0])] if with_text_header else [f"c{i}" for i in range(len(rows[0]))])
    writer.writerows(rows)
    articles = read_file_bytes(scratch, buffer.getvalue().encode("utf-8", errors="replace"), ".csv")
    tried("test_csv_rows_give_articles_or_an_error", refused=not articles)
    for article in articles:
        check_sentences(article)


readable_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=200)


@HOSTILE
@given(st.integers(min_value=2, max_value=3), st.lists(st.tuples(st.text(max_size=20), readable_text.filter(str.strip), st.text(max_size=40)), min_size=1, max_size=6))
def test_well_formed_csv_gives_one_article_per_row(scratch: Path, width: int, rows: list[tuple[str, str, str]]) -> None:
    tried("test_well_formed_csv_gives_one_article_per_row")
    rows = [(identifier.replace("\x00", ""), text, title.replace("\x00", "")) for identifier, text, title in rows]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["id", "text", "title"][:width])
    writer.writerows(row[:width] for row in rows)
    path = scratch / "input.csv"
    path.write_bytes(buffer.getvalue().encode("utf-8", errors="replace"))
    articles = list(read_articles([path]))
    assert len(articles) == len(rows)
    if width == 3:
        assert [a.title for a in articles] == [title.encode("utf-8", errors="replace").decode() for _, _, title in rows]


@HOSTILE
@given(st.one_of(st.dictionaries(st.sampled_from(["id", "title", "url", "date", "text", "extra"]), st.one_of(json_values, any_text), max_size=6), good_rows))
def test_article_from_record_accepts_or_names_the_line(record: dict[str, Any]) -> None:
    try:
        article = article_from_record(record, source="rows.jsonl", line=7)
    except InputError as e:
        tried("test_article_from_record_accepts_or_names_the_line", refused=True)
        assert record_problem(record), f"a good record was refused: {e}"
        assert str(e).startswith("rows.jsonl:7: ")
    else:
        tried("test_article_from_record_accepts_or_names_the_line")
        assert not record_problem(record), "a bad record was accepted"
        check_sentences(article)


@settings(HOSTILE, max_examples=min(HOSTILE.max_examples, 60))
@given(st.one_of(any_text, st.lists(st.sampled_from(["<p>", "</p>", "<script>", "</script>", "<div>", "<html>", "<body>", "&amp;", "<!--", "-->", "<?xml version='1.0' encoding='utf-8'?>", "<br/>", "text", "Dr. Li said so.", "\x00"]), max_size=30).map("".join)))
def test_html_gives_an_article_or_one_error(html: str) -> None:
    try:
        article = article_from_html(html, source="page.html")
    except InputError as e:
        tried("test_html_gives_an_article_or_one_error", refused=True)
        assert str(e) == "page.html: no article text found in the HTML page"
    else:
        tried("test_html_gives_an_article_or_one_error")
        check_sentences(article)


NEWS_PARAGRAPHS = [
    "The National Medical Products Administration said hospitals may use the imaging software only for assessments, not for decisions.",
    "Shares of the start-up fell by a third after it raised 2.96 billion yuan in its listing on the Shanghai exchange two years ago.",
    "Doctors at three hospitals reported that the chatbot invented dosages and gave advice that could have endangered patients.",
    "The vendor said forty hospitals in five provinces now pay a yearly subscription for the triage tool and its updates.",
    "国家医保局表示，人工智能辅助诊断暂不单独设立收费项目，医院无法就此向患者收取费用。",
    "该公司在去年的融资中获得了三亿元人民币，投资方包括多家医疗产业基金和地方政府引导基金。",
]


@settings(HOSTILE, max_examples=min(HOSTILE.max_examples, 40))
@given(st.lists(st.sampled_from(NEWS_PARAGRAPHS), min_size=3, max_size=8, unique=True), st.sampled_from(["", "<nav><a href='/'>Home</a> | <a href='/news'>News</a></nav>"]))
def test_an_article_page_gives_its_paragraphs(paragraphs: list[str], furniture: str) -> None:
    tried("test_an_article_page_gives_its_paragraphs")
    body = "".join(f"<p>{escape(paragraph)}</p>" for paragraph in paragraphs)
    html = f"<html><head><title>Health AI news</title></head><body>{furniture}<article><h1>Health AI news</h1>{body}</article><footer>Subscribe now</footer></body></html>"
    article = article_from_html(html, source="page.html")
    for paragraph in paragraphs:
        assert paragraph in article.text
    check_sentences(article)


choice_values = st.one_of(st.sampled_from(LABELS), json_values)
regions = st.one_of(
    json_values,
    st.fixed_dictionaries({"type": st.sampled_from(["choices", "labels", 5]), "value": st.one_of(json_values, st.fixed_dictionaries({"choices": st.one_of(st.lists(choice_values, max_size=3), json_values)}))}),
)
annotations = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"result": st.one_of(st.lists(regions, max_size=3), json_values)},
        optional={"completed_by": json_values, "was_cancelled": json_values, "ground_truth": json_values, "updated_at": json_values},
    ),
)
tasks = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {"data": st.one_of(json_values, st.fixed_dictionaries({"text": st.one_of(any_text, json_values)}, optional={"sentence_id": st.sampled_from(["s1", "s2", 3, None]), "paragraph": json_values, "lang": json_values}))},
        optional={"id": json_values, "annotations": st.one_of(st.lists(annotations, max_size=3), json_values)},
    ),
    st.fixed_dictionaries({"text": st.one_of(any_text, json_values), "annotator": json_values}, optional={"labels": st.one_of(choice_values, st.lists(choice_values, max_size=3), json_values), "sentence_id": st.sampled_from(["s1", "s2"])}),
)


@HOSTILE
@given(st.one_of(json_values, st.lists(tasks, max_size=5)))
def test_export_import_gives_rows_or_an_input_error(payload: Any) -> None:
    try:
        rows, counts = labeled_from_export(payload, origin="export.json")
    except InputError as e:
        tried("test_export_import_gives_rows_or_an_input_error", refused=True)
        assert str(e).startswith("export.json") and "\n" not in str(e)
    else:
        tried("test_export_import_gives_rows_or_an_input_error")
        assert counts["tasks"] == len(payload)
        assert len({row.sentence_id for row in rows}) == len(rows)
        assert all(set(row.labels) <= set(LABELS) for row in rows)


@HOSTILE
@given(st.lists(st.tuples(readable_text.filter(str.strip), st.lists(st.sampled_from(LABELS), unique=True), st.booleans()), max_size=6, unique_by=lambda task: task[0]))
def test_a_well_formed_export_gives_each_annotated_sentence_its_labels(tasks: list[tuple[str, list[str], bool]]) -> None:
    """Tasks as Label Studio exports them, one annotation each (or none): every annotated sentence comes back with its choices."""
    tried("test_a_well_formed_export_gives_each_annotated_sentence_its_labels")
    payload = [
        {
            "id": number,
            "data": {"text": text, "sentence_id": f"s{number}"},
            "annotations": [{"completed_by": 1, "result": [{"type": "choices", "value": {"choices": labels}}]}] if annotated else [],
        }
        for number, (text, labels, annotated) in enumerate(tasks, start=1)
    ]
    rows, counts = labeled_from_export(payload, origin="export.json")
    expected = {f"s{number}": sorted(labels) for number, (_, labels, annotated) in enumerate(tasks, start=1) if annotated}
    assert {row.sentence_id: sorted(row.labels) for row in rows} == expected
    assert counts["without_annotations"] == len(tasks) - len(expected)


@settings(HOSTILE, max_examples=min(HOSTILE.max_examples, 60))
@given(any_text)
def test_classify_cli_on_arbitrary_text(scratch: Path, text: str) -> None:
    path = scratch / "article.txt"
    data = text.encode("utf-8")
    path.write_bytes(data)
    result = CliRunner().invoke(cli_group(), ["classify", str(path)])
    tried("test_classify_cli_on_arbitrary_text", refused=result.exit_code != 0)
    readable = plain_text(data)
    if readable is not None and readable.strip():
        assert result.exit_code == 0, f"plain text refused: {result.output}"
    if result.exit_code == 2:
        assert result.stderr.count("\n") == 1 and result.stderr.startswith(f"Error: {path}: ")
    else:
        assert result.exit_code == 0, result.output
        assert result.stderr == ""


def cli_group() -> Any:
    from annotate.cli import cli

    return cli


# --- explicit bad inputs through the command line ----------------------------------------------


def ingest(*args: str) -> Any:
    return CliRunner().invoke(cli_group(), ["ingest", *args])


def assert_one_error(result: Any, expected: str, code: int = 2) -> None:
    assert result.exit_code == code, result.output
    assert result.stderr == f"Error: {expected}\n"


def bomb(kind: str) -> bytes:
    zeros = b"\0" * 20_000_000
    if kind == "gzip":
        return gzip.compress(zeros)
    if kind == "bzip2":
        return bz2.compress(zeros)
    if kind == "xz":
        return lzma.compress(zeros)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", zeros)
    return buffer.getvalue()


@pytest.mark.timeout(30)  # unpacking 20 MB of zeros per example would not fit; refusing by magic bytes does
@pytest.mark.parametrize("kind", ["gzip", "zip", "bzip2", "xz"])
def test_compression_bombs_named_txt_are_refused_without_unpacking(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(bomb(kind))
    result = ingest(str(path))
    assert_one_error(result, f"{path}: binary file, not text ({kind} data)")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("empty.txt", b"", "empty file: no text to read"),
        ("blank.md", " \n\t\n\u3000".encode(), "empty file: no text to read"),
        ("bom.txt", b"\xef\xbb\xbf\n \n", "empty file: no text to read"),
        ("bom16.txt", b"\xff\xfe", "empty file: no text to read"),
        ("odd16.txt", b"\xff\xfeh\x00i\x00!", "not valid UTF-16 (truncated data at byte 6)"),
        ("nul.txt", b"text\x00with a NUL", "binary file, not text"),
        ("nul.csv", b"text\nab\x00c\n", "binary file, not text"),
        ("scripts.html", b"<html><head><script>var a = 1;</script></head><body><script>alert('x')</script><style>p{}</style></body></html>", "no article text found in the HTML page"),
        ("cut.jsonl", b'{"text": "fine"}\n{"text": "cut', "2: not valid JSON (unexpected end of data)"),
        ("surrogate.jsonl", b'{"text": "ok"}\n{"text": "lone \\ud800 surrogate"}\n', "2: not valid JSON (no low surrogate in string)"),
        ("types.jsonl", b'{"text": "ok"}\n{"text": ["a", "list"]}\n', "2: field 'text' must be a string, got list"),
        ("title.jsonl", b'{"text": "ok", "title": {"a": 1}}\n', "1: field 'title' must be a string, got dict"),
        ("array.jsonl", b"[1, 2]\n", "1: expected a JSON object, got list"),
        ("deep.jsonl", b"[" * 100_000 + b"]" * 100_000, "1: not valid JSON (depth limit exceeded)"),
        ("notext.csv", b"id,title\n1,x\n", "1: CSV header has no 'text' column"),
        ("ragged.csv", b"id,text\n1,ok\n2,ok,extra\n", "3: row has 3 fields, header has 2"),
    ],
)
def test_bad_files_give_one_error_line_with_exit_code_2(tmp_path: Path, name: str, data: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    separator = "" if message[0].isdigit() else " "
    assert_one_error(ingest(str(path)), f"{path}:{separator}{message}")


def test_unicode_mixed_scripts_and_control_characters_are_read(tmp_path: Path) -> None:
    path = tmp_path / "mixed.txt"
    text = "Mixed scripts\n\nThe NMPA (国家药监局) approved Ñandú\x07 AI — Привет, مرحبا, 🙂 test.\x0b It said\u2028 “yes”.\n\n医疗AI融资下降。投资人观望！\n"
    path.write_text(text, encoding="utf-8")
    result = ingest(str(path))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["lang"] for row in rows] == ["en", "en", "zh", "zh"]
    assert rows[2]["text"] == "医疗AI融资下降。"


def test_a_nul_byte_after_the_first_8_kb_is_kept_as_text(tmp_path: Path) -> None:
    path = tmp_path / "late-nul.txt"
    path.write_bytes(b"Title\n\n" + b"A sentence here. " * 600 + b"Odd \x00 byte.\n")
    result = ingest(str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[-1])["text"] == "Odd \x00 byte."


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_special_files_are_refused_not_read_forever(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "stream.txt"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    assert_one_error(ingest(str(path)), f"{path}: not a regular file")


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "secret.txt"
    path.write_text("Hidden text.", encoding="utf-8")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the read fail as it would for a user
        real_read_bytes = Path.read_bytes

        def denied(self: Path) -> bytes:
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    assert_one_error(ingest(str(path)), f"{path}: cannot read (Permission denied)")


def test_a_directory_with_a_symlink_loop_is_read_once(tmp_path: Path) -> None:
    folder = tmp_path / "articles"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "one.txt").write_text("The FDA cleared the tool.", encoding="utf-8")
    (folder / "sub" / "loop").symlink_to(folder, target_is_directory=True)
    (folder / "self").symlink_to(".", target_is_directory=True)
    (folder / "dangling.txt").symlink_to(tmp_path / "missing.txt")
    result = ingest(str(folder))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["The FDA cleared the tool."]


def test_paths_with_dot_dot_are_plain_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "a.txt").write_text("The FDA cleared the tool.", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "out")
    result = ingest("../in/a.txt", "-o", "../out/../out/s.jsonl")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "s.jsonl").read_text(encoding="utf-8"))["source"] == "../in/a.txt"


def test_names_from_files_cannot_climb_out_of_their_folder(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.mkdir()
    (tmp_path / "secret-v1.jsonl").write_text("{}\n", encoding="utf-8")
    manifest = {"sets": {"x": [{"version": 1, "file": "../secret-v1.jsonl", "sha256": "0", "created": "2026-01-01", "rows": 1}]}}
    (labels / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = CliRunner().invoke(cli_group(), ["train", "--labels", str(labels), "-o", str(tmp_path / "m")])
    assert_one_error(result, f"{labels / 'manifest.json'}: set 'x' has a malformed entry; expected version, file (NAME-vN.jsonl in this folder), sha256, created", code=1)
    export = tmp_path / "export.json"
    export.write_text("[]", encoding="utf-8")
    result = CliRunner().invoke(cli_group(), ["labels", "import", str(export), "--labels-dir", str(tmp_path / "l2"), "--name", "../escape"])
    assert_one_error(result, "label-set name '../escape' must be letters, digits, '_' or '.'")


def label_row(sentence_id: str, **changes: Any) -> dict[str, Any]:
    row = {"sentence_id": sentence_id, "article_id": "a1", "text": "Investors put money in.", "lang": "en", "regulatory_barrier": 0, "financing": 1, "safety_risk": 0, "commercialization": 0, "decision": "author"}
    row.update(changes)
    return row


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([label_row("s1"), label_row("s2", hype=1)], "2: hype: Extra inputs are not permitted"),
        ([label_row("s1", financing=2)], "1: financing: Input should be 0 or 1"),
        ([label_row("s1"), label_row("s1")], "2: duplicate sentence_id 's1' (first on line 1)"),
        ([label_row("s1", paragraph="x")], "1: paragraph: Input should be a valid integer, unable to parse string as an integer"),
    ],
    ids=["unknown-label", "bad-value", "duplicate-id", "wrong-type"],
)
def test_a_bad_label_set_is_refused_with_its_line(tmp_path: Path, rows: list[dict[str, Any]], message: str) -> None:
    path = tmp_path / "bad-v1.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    result = CliRunner().invoke(cli_group(), ["train", "--labels", str(path), "-o", str(tmp_path / "m")])
    assert_one_error(result, f"{path}:{message}")


def task(task_id: int, sentence_id: str, text: str, choices: Any) -> dict[str, Any]:
    return {"id": task_id, "data": {"sentence_id": sentence_id, "text": text}, "annotations": [{"completed_by": 1, "result": [{"type": "choices", "value": {"choices": choices}}]}]}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([task(1, "s1", "A.", ["financing", "hype"])], "task #1 (id 1): unknown label 'hype' (expected one of regulatory_barrier, financing, safety_risk, commercialization)"),
        ([task(1, "s1", "A.", ["financing"]), task(2, "s1", "B.", [])], "task #2 (id 2): sentence_id 's1' is also on task #1 with a different text"),
        ([task(1, "s1", "A.", "financing")], "task #1 (id 1): 'choices' must be a JSON array, got str"),
        ([{"id": 1, "data": {"text": "A."}, "annotations": {"result": []}}], "task #1 (id 1): 'annotations' must be a JSON array, got dict"),
        ([{"id": 1, "data": ["A."]}], "task #1 (id 1): 'data' must be a JSON object, got list"),
        ([{"id": 1, "data": {"text": "A.", "paragraph": "third"}, "annotations": [{"result": []}]}], "sentence 'ls-task-1': 'paragraph' must be a whole number from 1, got str 'third'"),
        ({"tasks": []}, "expected a JSON array of tasks (Label Studio's JSON or JSON_MIN export)"),
    ],
    ids=["unknown-label", "duplicate-id", "choices-string", "annotations-object", "data-list", "paragraph-word", "not-a-list"],
)
def test_a_bad_export_is_refused(tmp_path: Path, payload: Any, message: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    result = CliRunner().invoke(cli_group(), ["labels", "import", str(path), "--labels-dir", str(tmp_path / "labels")])
    where = f"{path}: " if message.startswith("expected") else "export.json: "
    assert_one_error(result, f"{where}{message}")
    assert not (tmp_path / "labels" / "manifest.json").exists()


def test_a_file_name_with_control_characters_stays_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "evil\n\x1b[31mname.txt"
    path.write_bytes(b"")
    result = ingest(str(path))
    assert result.exit_code == 2
    assert result.stderr == f"Error: {tmp_path}/evil\\n\\x1b[31mname.txt: empty file: no text to read\n"


# --- 50 MB on one line ------------------------------------------------------------------------

def write_one_line(path: Path, unit: str, size: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        written = 0
        while written < size:
            handle.write(unit)
            written += len(unit.encode("utf-8"))


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("unit", "size", "expected"),
    [
        # No sentence end in 50 MB: blingfire sees it in windows, so it comes out in window-sized pieces.
        ("Investors raised funds for Acme Inc. in the U.S. as regulators asked Dr. Li for 3.5 more trials and hospitals waited ", 50_000_000, range(490, 510)),
        ("医疗人工智能企业融资额下降投资人普遍转向观望监管部门要求补充临床试验", 50_000_000, range(1, 2)),
        # 10 MB here: the time goes into the 170,000 sentence records, not into splitting.
        ("The FDA cleared the AI tool (No. 3) and investors cheered. ", 10_000_000, range(169_000, 170_000)),
    ],
    ids=["english-50mb-no-sentence-end", "chinese-50mb-no-sentence-end", "english-10mb-many-sentences"],
)
def test_a_huge_single_line_is_split_in_bounded_time(tmp_path: Path, unit: str, size: int, expected: range) -> None:
    source = tmp_path / "huge.txt"
    write_one_line(source, unit, size)
    out = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "annotate", "ingest", str(source), "-o", str(out), "--quiet"],
        capture_output=True, text=True, cwd=ROOT, timeout=540, check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    with out.open("rb") as handle:
        lengths = [len(json.loads(line)["text"]) for line in handle]
    assert len(lengths) in expected
    assert max(lengths) <= EN_WINDOW_CHARS or len(lengths) == 1


@pytest.mark.timeout(120)  # quadratic merging took over 300 s on this input; linear takes a few seconds
def test_a_bracket_never_closed_does_not_make_merging_quadratic() -> None:
    sentences = segment(article_from_text("(" + "A. " * 160_000, title=""))
    assert sentences and all(s.text for s in sentences)


def test_a_hang_fails_the_test_instead_of_blocking_ci(request: pytest.FixtureRequest) -> None:
    """The timeout marks need pytest-timeout; without it they would be silently ignored."""
    assert request.config.pluginmanager.hasplugin("timeout")

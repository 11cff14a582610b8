from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import requires
from pathlib import Path

import pytest
from click.testing import CliRunner

from annotate.cli import cli

from .conftest import EXAMPLES, ROOT


def test_ingest_examples_to_file(tmp_path: Path) -> None:
    out = tmp_path / "sentences.jsonl"
    result = CliRunner().invoke(cli, ["ingest", str(EXAMPLES), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len({row["article_id"] for row in rows}) == 10
    assert set(rows[0]) == {"article_id", "sentence_id", "paragraph", "index", "text", "lang", "title", "source", "prev", "next"}
    assert {row["lang"] for row in rows} == {"en", "zh"}
    assert len({row["sentence_id"] for row in rows}) == len(rows)


def test_ingest_stdin_to_stdout() -> None:
    result = CliRunner().invoke(cli, ["ingest", "-"], input="Title\n\nThe FDA cleared it. Sales rose.")
    assert result.exit_code == 0
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["The FDA cleared it.", "Sales rose."]


@pytest.mark.parametrize(
    ("name", "content", "error"),
    [
        ("missing.txt", None, "Error: {path}: no such file or directory"),
        ("empty.txt", b"", "Error: {path}: empty file: no text to read"),
        ("blank.txt", b" \n\n ", "Error: {path}: empty file: no text to read"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "Error: {path}: binary file, not text"),
        ("rows.jsonl", b'{"text": "fine"}\n{"text": "cut', "Error: {path}:2: not valid JSON (unexpected end of data)"),
        ("rows.csv", b"id,text\n1,ok\n2,ok,extra\n", "Error: {path}:3: row has 3 fields, header has 2"),
        ("paper.pdf", b"%PDF-1.7", "Error: {path}: unsupported file type .pdf; use .txt, .md, .html, .jsonl or .csv"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path: Path, name: str, content: bytes | None, error: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "out.jsonl"
    out.write_text("previous results\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(path), "-o", str(out), "--force"])
    assert result.exit_code == 2
    assert result.stderr == error.format(path=path) + "\n"
    assert out.read_text(encoding="utf-8") == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted({name, "out.jsonl"} - ({name} if content is None else set()))


def test_existing_output_needs_force(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("keep\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["ingest", str(EXAMPLES / "zh_hospital_ai.txt"), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr == f"Error: {out} exists; pass --force to overwrite it\n"


WITHOUT_LXML_HTML_CLEAN = """
import sys
sys.modules["lxml_html_clean"] = None  # what an older pip left out: importing it fails
from annotate.cli import cli
cli(sys.argv[1:], prog_name="annotate")
"""


@pytest.mark.parametrize("command", ["ingest", "classify"])
def test_html_without_lxml_html_clean_is_one_error_line(tmp_path: Path, command: str) -> None:
    out = tmp_path / "out.jsonl"
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_LXML_HTML_CLEAN, command, str(EXAMPLES / "llm_safety_feature.html"), "-o", str(out), "-q"],
        capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("Error: reading HTML needs trafilatura and lxml_html_clean (lxml.html.clean module is now a separate project")
    assert result.stderr.endswith("; install them: pip install trafilatura lxml_html_clean\n") and result.stderr.count("\n") == 1
    assert not out.exists()


def test_the_html_path_dependencies_are_declared_directly() -> None:
    """pip 23 did not install lxml_html_clean through justext's lxml[html_clean] extra."""
    declared = {re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("-", "_") for requirement in requires("annotate") or []}
    assert {"trafilatura", "lxml", "lxml_html_clean"} <= declared

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from annotate.cli import cli

from .conftest import FIXTURES


def test_labels_import_summary(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["labels", "import", str(FIXTURES / "ls_export.json"), "--labels-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"4 labelled sentences from 6 tasks -> {tmp_path / 'studio-v1.jsonl'}\n"
        "left out: 2 tasks without annotations, 1 cancelled annotations\n"
        "disagreements: 2 (ties: 1)\n"
        "since last version: 4 new, 0 updated, 0 removed\n"
    )
    again = CliRunner().invoke(cli, ["labels", "import", str(FIXTURES / "ls_export.json"), "--labels-dir", str(tmp_path), "--json"])
    assert json.loads(again.stdout)["changed"] is False


def test_unknown_label_in_export(tmp_path: Path) -> None:
    export = json.loads((FIXTURES / "ls_export.json").read_text(encoding="utf-8"))
    export[0]["annotations"][1]["result"][0]["value"]["choices"] = ["Financing"]
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export), encoding="utf-8")
    result = CliRunner().invoke(cli, ["labels", "import", str(path), "--labels-dir", str(tmp_path / "labels")])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: export.json: task #1 (id 100): unknown label 'Financing' (expected one of regulatory_barrier, financing, safety_risk, commercialization)\n"
    )
    assert not (tmp_path / "labels").exists()


def test_truncated_export(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text((FIXTURES / "ls_export.json").read_text(encoding="utf-8")[:500], encoding="utf-8")
    result = CliRunner().invoke(cli, ["labels", "import", str(path), "--labels-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"Error: {path}:") and "not valid JSON" in result.stderr
    assert result.stderr.count("\n") == 1

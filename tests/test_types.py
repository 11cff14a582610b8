from __future__ import annotations

from mypy import api

from .conftest import ROOT


def test_package_type_checks_strictly() -> None:
    stdout, stderr, status = api.run(["--config-file", str(ROOT / "pyproject.toml"), str(ROOT / "annotate")])
    assert status == 0, stdout + stderr

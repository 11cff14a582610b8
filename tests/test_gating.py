"""Where the suite must be complete (CI, ``make test``) a skipped test is a failed one: checked in a real pytest run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

NEEDS_A_SERVICE = """
import pytest

def test_needs_a_service():
    pytest.skip("the service is not installed")

@pytest.mark.skipif(True, reason="not on this machine")
def test_marked():
    pass
"""


@pytest.mark.parametrize(
    ("environment", "outcome"),
    [
        ({}, "2 skipped"),
        ({"CI": "false"}, "2 skipped"),
        # A skip mark acts in the set-up, so that test shows as an error.
        ({"CI": "true"}, "1 failed, 1 error"),
        ({"CI": "1"}, "1 failed, 1 error"),
        ({"ANNOTATE_REQUIRE_INTEGRATION": "1"}, "1 failed, 1 error"),
    ],
    ids=["local", "CI=false", "CI=true", "CI=1", "make-test"],
)
def test_a_skip_fails_where_every_test_must_run(tmp_path: Path, environment: dict[str, str], outcome: str) -> None:
    (tmp_path / "test_service.py").write_text(NEEDS_A_SERVICE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "ANNOTATE_REQUIRE_INTEGRATION")} | environment
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "tests.conftest", "-q", "-rfs", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(outcome), result.stdout
    if "failed" in outcome:
        assert result.returncode == 1
        assert "skipped although CI or ANNOTATE_REQUIRE_INTEGRATION requires every test to run: the service is not installed" in result.stdout

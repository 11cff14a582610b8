from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
EXAMPLES = ROOT / "examples"
# The newest version of the starter label set, as the manifest lists it.
STARTER = ROOT / "labels" / json.loads((ROOT / "labels" / "manifest.json").read_text(encoding="utf-8"))["sets"]["starter"][-1]["file"]
# Cases tried by each property test, printed at the end of the run (issue 6 asks for the counts).
HYPOTHESIS_EXAMPLES: Counter[str] = Counter()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if HYPOTHESIS_EXAMPLES:
        terminalreporter.section("hypothesis: cases tried")
        for name, count in sorted(HYPOTHESIS_EXAMPLES.items()):
            terminalreporter.write_line(f"{count:>7}  {name}")
        terminalreporter.write_line(f"{sum(HYPOTHESIS_EXAMPLES.values()):>7}  in all")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's Label Studio settings."""
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "ANNOTATE_BACKEND_USER", "ANNOTATE_BACKEND_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model trained on a slice of the starter set, for round trips that must not touch models/default."""
    from annotate.dataset import load_labels
    from annotate.train import train

    rows = load_labels(ROOT / "labels")
    articles = sorted({row.article_id for row in rows})[::3]
    subset = [row for row in rows if row.article_id in set(articles)]
    folder = tmp_path_factory.mktemp("models") / "small"
    train(subset, model_dir=folder, evaluate=False)
    return folder

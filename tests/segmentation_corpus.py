"""Scoring ``annotate ingest`` against the labelled segmentation corpus in ``fixtures/segmentation``.

Each ``NAME.txt`` is a page as a user saves it (``copied/``: one page element
per line, furniture kept; ``wrapped/``: hard-wrapped plain text) and
``NAME.expected.txt`` its hand-made sentence list, one sentence a line, a
blank line between paragraphs. The headline counts as a sentence: ingest
gives it as every sentence's ``title``. Shared by the test and
``benchmarks/bench_segment.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent / "fixtures" / "segmentation"
KINDS = ("copied", "wrapped")
_WHITESPACE = re.compile(r"\s+")
_BULLET = re.compile(r"^(?:[•·\-*–—※▪●○■◆►✓]|\d{1,2}[.)、]|[一二三四五六七八九十]+、|[（(][一二三四五六七八九十\d]+[)）])\s*")


def normal(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def sources(kind: str) -> list[Path]:
    return sorted(path for path in (CORPUS / kind).glob("*.txt") if not path.name.endswith(".expected.txt"))


def expected_paragraphs(source: Path) -> list[list[str]]:
    text = source.with_suffix(".expected.txt").read_text(encoding="utf-8")
    blocks = re.split(r"\n[ \t]*\n", text.strip())
    return [[normal(line) for line in block.splitlines() if line.strip()] for block in blocks if block.strip()]


@dataclass
class Score:
    """Sentence precision/recall/F1 of one file (or a sum of files), and furniture found inside sentences."""

    name: str
    expected: int = 0
    predicted: int = 0
    matched: int = 0
    missed: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    leaks: list[tuple[str, str]] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.matched / self.predicted if self.predicted else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.expected if self.expected else 0.0

    @property
    def f1(self) -> float:
        total = self.expected + self.predicted
        return 2 * self.matched / total if total else 1.0

    def __add__(self, other: Score) -> Score:
        return Score(
            "all", self.expected + other.expected, self.predicted + other.predicted, self.matched + other.matched,
            self.missed + other.missed, self.wrong + other.wrong, self.leaks + other.leaks,
        )


def score(source: Path, records: Iterable[dict[str, Any]]) -> Score:
    """Score the ingest records of ``source``: its title plus its sentence texts against the expected list."""
    records = list(records)
    predicted = [normal(records[0]["title"])] if records and records[0]["title"] else []
    predicted += [normal(record["text"]) for record in records]
    expected = [sentence for paragraph in expected_paragraphs(source) for sentence in paragraph]
    overlap = Counter(predicted) & Counter(expected)
    result = Score(source.stem, len(expected), len(predicted), sum(overlap.values()))
    result.missed = list((Counter(expected) - overlap).elements())
    result.wrong = list((Counter(predicted) - overlap).elements())
    # A furniture line is a line of the page that is in no expected sentence; it must not be in any sentence either.
    kept = "\n".join(expected)
    lines = {_BULLET.sub("", normal(line)) for line in source.read_text(encoding="utf-8").splitlines()}
    furniture = [line for line in lines if len(line) >= 4 and line not in kept]
    result.leaks = [(line, sentence) for sentence in result.wrong for line in furniture if line in sentence]
    return result

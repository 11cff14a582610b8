"""``annotate ingest`` on the labelled segmentation corpus (``fixtures/segmentation``, see its MANIFEST.tsv).

The figures per file are printed by ``benchmarks/bench_segment.py``.
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from annotate.cli import cli

from .segmentation_corpus import CORPUS, KINDS, Score, expected_paragraphs, score, sources

CORPUS_F1 = 0.98
FILE_F1 = 0.90
EXTRA = CORPUS.parent / "segmentation-extra"


def ingest(paths: list[Path], tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / "sentences.jsonl"
    result = CliRunner().invoke(cli, ["ingest", *map(str, paths), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    by_source: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in out.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        by_source[record["source"]].append(record)
    return by_source


def test_the_corpus_has_enough_pages_in_both_languages() -> None:
    with (CORPUS / "MANIFEST.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    assert {row[0] for row in rows} == {path.stem for kind in KINDS for path in sources(kind)}
    copied = [row for row in rows if row[1] == "copied"]
    wrapped = [row for row in rows if row[1] == "wrapped"]
    assert len(copied) >= 40 and len(wrapped) >= 10
    assert {row[2] for row in copied} == {row[2] for row in wrapped} == {"en", "zh"}
    for kind in KINDS:
        for path in sources(kind):
            assert path.with_suffix(".expected.txt").exists()
            assert all(expected_paragraphs(path))


@pytest.mark.parametrize("kind", KINDS)
def test_ingest_finds_the_hand_made_sentences(kind: str, tmp_path: Path) -> None:
    paths = sources(kind)
    records = ingest(paths, tmp_path)
    scores = [score(path, records[str(path)]) for path in paths]
    total = sum(scores, Score("all"))
    report = "\n".join(f"{s.name}: F1 {s.f1:.3f}, missed {s.missed[:2]}, wrong {s.wrong[:2]}" for s in scores if s.f1 < 1)
    assert total.f1 >= CORPUS_F1, report
    assert all(s.f1 >= FILE_F1 for s in scores), report
    assert not total.leaks, f"furniture inside sentences: {total.leaks[:5]}"


def test_headings_and_summary_boxes_get_their_own_paragraph_number(tmp_path: Path) -> None:
    page = CORPUS / "copied" / "en-news-caixin-ai-care.txt"
    records = ingest([page], tmp_path)[str(page)]
    paragraph = {record["text"]: record["paragraph"] for record in records}
    for heading in ("DIGEST HUB", "Explore the story in 30 seconds", "Who's Who", "Sansure Biotech Inc.", "What Happened When"):
        assert sum(record["paragraph"] == paragraph[heading] for record in records) == 1, heading
    assert paragraph["2021: Investment in China's medical AI sector reached ¥11.5 billion, lifted by Covid-era demand."] > paragraph["What Happened When"]


def test_pages_of_other_sites_lose_no_sentence(tmp_path: Path) -> None:
    """Pages unlike the corpus may keep a tag line or two, but no sentence of the article is lost or merged."""
    paths = sorted(path for path in EXTRA.glob("*.txt") if not path.name.endswith(".expected.txt"))
    assert len(paths) >= 20
    records = ingest(paths, tmp_path)
    scores = [score(path, records[str(path)]) for path in paths]
    lost = {s.name: s.missed for s in scores if s.missed}
    assert not lost, lost
    assert sum(scores, Score("all")).f1 >= 0.95

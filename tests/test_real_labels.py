"""The real-article label sets: what issue 10 asks of them, checked on the files in the repository."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from annotate.dataset import label_set_files, read_label_file
from annotate.labels import LABELS
from annotate.schemas import LabeledSentence

from .conftest import ROOT

LABELS_DIR = ROOT / "labels"
PROVENANCE = LABELS_DIR / "articles" / "real.jsonl"
# The evaluation article whose retellings were removed from the starter set; no set may use it.
EXCLUDED_URL = "caixinglobal.com/2025-02-14/in-depth-chinese-ai-developers-struggle-to-win-over-health-care"


def newest(folder: Path, name: str) -> Path:
    return next(path for path in label_set_files(folder) if path.name.startswith(f"{name}-v"))


@pytest.fixture(scope="module")
def train_rows() -> list[LabeledSentence]:
    return read_label_file(newest(LABELS_DIR, "real"))


@pytest.fixture(scope="module")
def heldout_rows() -> list[LabeledSentence]:
    return read_label_file(newest(LABELS_DIR / "heldout", "real"))


@pytest.fixture(scope="module")
def provenance() -> dict[str, dict]:
    return {record["article_id"]: record for record in map(json.loads, PROVENANCE.read_text(encoding="utf-8").splitlines())}


def test_every_article_has_its_source_publisher_and_date(train_rows, heldout_rows, provenance) -> None:
    articles = {row.article_id for row in [*train_rows, *heldout_rows]}
    assert articles == set(provenance)
    for record in provenance.values():
        assert record["url"].startswith(("http://", "https://")) and record["publisher"] and record["date"]
        assert EXCLUDED_URL not in record["url"]
    for rows, split in ((train_rows, "train"), (heldout_rows, "heldout")):
        assert {provenance[row.article_id]["split"] for row in rows} == {split}
        assert all(row.source == provenance[row.article_id]["url"] for row in rows)


def test_the_held_out_set_shares_no_publisher_with_training(train_rows, heldout_rows, provenance) -> None:
    train_publishers = {provenance[row.article_id]["publisher_key"] for row in train_rows}
    heldout_publishers = {provenance[row.article_id]["publisher_key"] for row in heldout_rows}
    assert heldout_publishers and not train_publishers & heldout_publishers
    assert not {row.sentence_id for row in train_rows} & {row.sentence_id for row in heldout_rows}


def test_the_training_set_is_as_large_and_as_varied_as_asked(train_rows) -> None:
    assert len({row.article_id for row in train_rows}) >= 600 and len(train_rows) >= 8000
    by_lang = Counter(row.lang for row in train_rows)
    assert by_lang["zh"] * 3 >= len(train_rows)
    for lang in ("en", "zh"):
        for label in LABELS:
            assert sum(getattr(row, label) for row in train_rows if row.lang == lang) >= 300, (lang, label)


def test_the_held_out_set_is_large_enough_and_double_annotated(heldout_rows) -> None:
    assert len({row.article_id for row in heldout_rows}) >= 100 and len(heldout_rows) >= 1200
    for row in heldout_rows:
        assert len({choice.annotator for choice in row.annotations}) >= 2
        # Each label is the majority of the annotators' votes.
        for label in LABELS:
            votes = sum(label in choice.labels for choice in row.annotations)
            assert getattr(row, label) == int(2 * votes > len(row.annotations)), (row.sentence_id, label)


def test_rows_carry_their_neighbours_in_article_order(train_rows) -> None:
    by_article: dict[str, list[LabeledSentence]] = {}
    for row in train_rows:
        by_article.setdefault(row.article_id, []).append(row)
    linked = 0
    for rows in by_article.values():
        texts = {row.text for row in rows}
        starts = [row for row in rows if not row.prev]
        assert len(starts) >= 1
        for row in rows:
            assert not row.prev or row.prev in texts
            linked += bool(row.next)
    assert linked >= len(train_rows) - len(by_article)


def test_the_starter_set_no_longer_retells_the_excluded_article() -> None:
    rows = read_label_file(newest(LABELS_DIR, "starter"))
    for pair in (("11.5", "2.96"), ("115亿", "29.6亿")):
        assert not [row.text for row in rows if all(part in row.text for part in pair)]
    assert not {"en-c-03", "en-d-01", "en-d-40", "zh-a-02", "zh-c-01", "zh-c-29"} & {row.article_id for row in rows}

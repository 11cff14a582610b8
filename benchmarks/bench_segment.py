"""Segmentation quality and speed of ``annotate ingest`` (issue 12).

Quality: every page of the labelled corpus in ``tests/fixtures/segmentation``
(``copied/``: pages copied from a browser, one element per line;
``wrapped/``: hard-wrapped plain text) is ingested as a user would, and its
sentences are compared with the hand-made list: precision, recall and F1 per
file and overall, paragraph units matched, and any furniture line found
inside a sentence.

Speed: the corpus pages are written as one JSONL archive of articles (and as
one huge copied page, to show that the time grows linearly), ingested in this
process, and timed as min / median / max over ``--runs`` runs. Run from the
repository root::

    .venv/bin/python benchmarks/bench_segment.py
    .venv/bin/python benchmarks/bench_segment.py --megabytes 5 --runs 3 --quiet
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from annotate.ingest import article_from_text, read_articles  # noqa: E402
from annotate.segment import segment, segment_all  # noqa: E402
from tests.segmentation_corpus import KINDS, Score, expected_paragraphs, normal, score, sources  # noqa: E402


def units_matched(path: Path) -> tuple[int, int, int]:
    """Paragraph units (the headline, then the sentences of each paragraph number) matched, expected, found."""
    article = next(read_articles([path]))
    found: list[tuple[str, ...]] = [(normal(article.title),)] if article.title else []
    number = None
    for sentence in segment(article):
        if sentence.paragraph != number:
            found.append(())
            number = sentence.paragraph
        found[-1] += (normal(sentence.text),)
    expected = [tuple(paragraph) for paragraph in expected_paragraphs(path)]
    return sum((Counter(found) & Counter(expected)).values()), len(expected), len(found)


def quality(quiet: bool) -> None:
    for kind in KINDS:
        total, units = Score("all"), [0, 0, 0]
        print(f"\n{kind} pages: precision / recall / F1 of sentences, furniture lines inside sentences")
        for path in sources(kind):
            records = [s.model_dump() for article in read_articles([path]) for s in segment(article)]
            result = score(path, records)
            total += result
            units = [a + b for a, b in zip(units, units_matched(path), strict=True)]
            print(f"  {result.name:<52} {result.precision:6.3f} {result.recall:6.3f} {result.f1:6.3f}  {len(result.leaks)}")
            if not quiet:
                for sentence in result.missed:
                    print(f"      missed: {sentence[:110]}")
                for sentence in result.wrong:
                    print(f"      wrong:  {sentence[:110]}")
        worst = min((score(p, [s.model_dump() for a in read_articles([p]) for s in segment(a)]).f1, p.stem) for p in sources(kind))
        print(
            f"  {kind} overall: {total.expected} expected, {total.predicted} found, precision {total.precision:.4f}, "
            f"recall {total.recall:.4f}, F1 {total.f1:.4f}; lowest file F1 {worst[0]:.3f} ({worst[1]}); "
            f"furniture inside sentences: {len(total.leaks)}; paragraph units matched {units[0]} of {units[1]} expected, {units[2]} found"
        )


def timed(function: object, runs: int) -> list[float]:
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        function()  # type: ignore[operator]
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(label: str, seconds: list[float], megabytes: float, sentences: int) -> None:
    best, median, worst = min(seconds), statistics.median(seconds), max(seconds)
    print(
        f"  {label:<44} {megabytes:7.1f} MB  {sentences:>9,} sentences  seconds min/median/max {best:.2f} / {median:.2f} / {worst:.2f}"
        f"  -> {megabytes / median:.2f} MB/s, {sentences / median:,.0f} sentences/s"
    )


def speed(megabytes: float, runs: int) -> None:
    print(f"\nspeed: read + lay out + split, in this process ({runs} runs)")
    with tempfile.TemporaryDirectory() as folder:
        for kind in KINDS:
            pages = [path.read_text(encoding="utf-8") for path in sources(kind)]
            archive = Path(folder) / f"{kind}.jsonl"
            size = 0
            with archive.open("w", encoding="utf-8") as handle:
                number = 0
                while size < megabytes * 1e6:
                    line = json.dumps({"id": f"{kind}-{number}", "text": pages[number % len(pages)]}, ensure_ascii=False) + "\n"
                    handle.write(line)
                    size += len(line.encode("utf-8"))
                    number += 1
            count = sum(1 for _ in segment_all(read_articles([archive])))
            summary(f"{kind}: {number:,} articles in one JSONL", timed(lambda: sum(1 for _ in segment_all(read_articles([archive]))), runs), size / 1e6, count)
        # One huge page: if layout were worse than linear, the time per MB would grow with the size.
        page = "\n".join(path.read_text(encoding="utf-8") for path in sources("copied"))
        for factor in (1, 10):  # a quarter, then 2.5 times --megabytes
            text = "Title\n" + "\n".join([page] * max(1, int(megabytes * factor * 1e6 / 4 / len(page.encode("utf-8")))))
            size = len(text.encode("utf-8")) / 1e6
            count = len(segment(article_from_text(text)))
            summary(f"one copied page of {size:.1f} MB", timed(lambda text=text: segment(article_from_text(text)), runs), size, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=10.0, help="size of each timed input (the one-page test uses a quarter and 2.5 times this)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quiet", action="store_true", help="per-file figures only, without the missed and wrong sentences")
    args = parser.parse_args()
    quality(args.quiet)
    speed(args.megabytes, args.runs)


if __name__ == "__main__":
    main()

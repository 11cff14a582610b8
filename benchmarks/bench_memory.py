"""Memory and load-time figures that used to be asserted in unit tests (issue 13), with their bounds.

1. ``classify --sentences`` on 5 MiB and on 200 MiB of JSONL, and ``classify``
   of a 100 MiB article archive with digests: peak RSS of each process. The
   README's "memory stays flat whatever the input size" is the difference,
   bound: under 120 MiB.
2. ``ingest`` of one line of 50 MB with no sentence end (English and
   Chinese) and of 10 MB of short sentences: peak RSS, bound: under 2,000 MiB.
   (``tests/test_hostile.py`` checks the sentences and that it finishes.)
3. ``load_model()`` of ``models/default`` after the imports: best of 5,
   bound: under 1 s.

Every figure is printed; with ``--check`` the exit code is 1 when one is over
its bound. Run from the repository root (about 3 minutes here)::

    .venv/bin/python benchmarks/bench_memory.py --check
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
# Peak RSS of the command run in a child process: ru_maxrss of the children, in KiB on Linux.
PEAK_RSS = "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
FLAT_BOUND_MIB = 120
HUGE_LINE_BOUND_MIB = 2000
LOAD_BOUND_S = 1.0
TEXTS = [
    {"text": "Regulators fined the hospital after its AI triage tool missed a stroke."},
    {"text": "The start-up raised $40 million in a Series B round led by a health fund."},
    {"text": "Sales of the imaging software doubled as three provinces signed contracts."},
]


def peak_rss_mib(*args: str) -> float:
    """Peak resident memory of ``annotate ARGS -q`` in its own process."""
    command = [sys.executable, "-c", PEAK_RSS, sys.executable, "-m", "annotate", *args, "-q"]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return int(completed.stdout.split()[-1]) / 1024


def write_padded(path: Path, rows: list[dict[str, str]], *, copies: int, padding: int) -> None:
    """Rows repeated ``copies`` times, each with a pass-through field of ``padding`` bytes to make the file big."""
    filler = "x" * padding
    with path.open("wb") as handle:
        for copy in range(copies):
            for number, row in enumerate(rows):
                handle.write(orjson.dumps({**row, "id": f"{copy}-{number}", "padding": filler}) + b"\n")


def write_one_line(path: Path, unit: str, size: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        written = 0
        while written < size:
            handle.write(unit)
            written += len(unit.encode("utf-8"))


def verdict(value: float, bound: float) -> str:
    return "ok" if value < bound else f"OVER the bound of {bound:g}"


def bench_flat_memory(folder: Path, figures: dict[str, float]) -> list[bool]:
    write_padded(folder / "small.jsonl", TEXTS, copies=170, padding=10_000)
    write_padded(folder / "big.jsonl", TEXTS, copies=6800, padding=10_000)
    articles = [{"title": f"Article {n}", "text": f"{row['text']} It was reported on day {n}. Shares rose."} for n, row in enumerate(TEXTS)]
    write_padded(folder / "articles.jsonl", articles, copies=3400, padding=10_000)
    small = peak_rss_mib("classify", "--sentences", str(folder / "small.jsonl"), "-o", str(folder / "small-out.jsonl"))
    big = peak_rss_mib("classify", "--sentences", str(folder / "big.jsonl"), "-o", str(folder / "big-out.jsonl"))
    archive = peak_rss_mib("classify", str(folder / "articles.jsonl"), "-o", str(folder / "a.jsonl"), "--digest", str(folder / "d.jsonl"))
    sizes = {name: (folder / f"{name}.jsonl").stat().st_size / 2**20 for name in ("small", "big", "articles")}
    print("\n## classify: peak RSS against input size")
    print(f"--sentences {sizes['small']:.0f} MiB: {small:.0f} MiB; {sizes['big']:.0f} MiB: {big:.0f} MiB; "
          f"difference {big - small:.0f} MiB ({verdict(big - small, FLAT_BOUND_MIB)})")  # fmt: skip
    print(f"articles {sizes['articles']:.0f} MiB with digests: {archive:.0f} MiB; difference {archive - small:.0f} MiB "
          f"({verdict(archive - small, FLAT_BOUND_MIB)})")  # fmt: skip
    figures.update(flat_small_mib=small, flat_big_mib=big, flat_articles_mib=archive)
    return [big - small < FLAT_BOUND_MIB, archive - small < FLAT_BOUND_MIB]


def bench_huge_lines(folder: Path, figures: dict[str, float]) -> list[bool]:
    cases = [
        ("english-50mb-no-sentence-end", "Investors raised funds for Acme Inc. in the U.S. as regulators asked Dr. Li for 3.5 more trials and hospitals waited ", 50_000_000),
        ("chinese-50mb-no-sentence-end", "医疗人工智能企业融资额下降投资人普遍转向观望监管部门要求补充临床试验", 50_000_000),
        ("english-10mb-many-sentences", "The FDA cleared the AI tool (No. 3) and investors cheered. ", 10_000_000),
    ]  # fmt: skip
    print("\n## ingest of one huge line: peak RSS")
    passed = []
    for name, unit, size in cases:
        source = folder / f"{name}.txt"
        write_one_line(source, unit, size)
        started = time.perf_counter()
        peak = peak_rss_mib("ingest", str(source), "-o", str(folder / f"{name}.jsonl"))
        print(f"{name}: {peak:.0f} MiB, {time.perf_counter() - started:.1f} s ({verdict(peak, HUGE_LINE_BOUND_MIB)})")
        figures[f"huge_line_{name}_mib"] = peak
        passed.append(peak < HUGE_LINE_BOUND_MIB)
        source.unlink()
    return passed


def bench_model_load(figures: dict[str, float]) -> list[bool]:
    code = (
        "import time; from annotate.classify import load_model; load_model(); timings = []\n"
        "for _ in range(5):\n    started = time.perf_counter(); load_model(); timings.append(time.perf_counter() - started)\n"
        "print(min(timings))"
    )
    best = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout)
    print(f"\n## load_model() of models/default after the imports: {best * 1000:.0f} ms, best of 5 ({verdict(best, LOAD_BOUND_S)})")
    figures["load_model_s"] = best
    return [best < LOAD_BOUND_S]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit with 1 when a figure is over its bound")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, load average {os.getloadavg()[0]:.2f} at start")
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        passed = bench_model_load(figures) + bench_flat_memory(folder, figures) + bench_huge_lines(folder, figures)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1), encoding="utf-8")
    if args.check and not all(passed):
        sys.exit(1)


if __name__ == "__main__":
    main()

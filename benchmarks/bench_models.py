"""The two shipped models side by side (issue 10): speed, memory, load time, one article.

For ``default`` (n-grams + sentence encoder + context) and ``fast`` (n-grams
only), each over ``--runs`` runs, min / median / max:

1. ``classify --sentences`` on N pre-split sentences (the real label sets'
   sentences, all distinct; ``prev``/``next`` filled as ``ingest`` fills them), one process
   and ``--jobs 2``: sentences/s, CPU seconds, peak RSS of the process tree.
2. ``load_model(name)`` in a fresh process, imports included, and with the
   numpy-only quick path.
3. ``annotate classify one-article.txt --model name``: wall time, start-up included.

Every command runs as a subprocess, as a user would run it::

    .venv/bin/python benchmarks/bench_models.py                  # about 10 minutes on an idle 2-core machine
    .venv/bin/python benchmarks/bench_models.py --default-sentences 5000 --fast-sentences 50000 --runs 1
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import orjson
import psutil
from bench_classify import ANNOTATE, ONE_ARTICLE, ROOT, measure, repeat, spread

from annotate.dataset import latest_version

# The newest real training and held-out sets, whatever their version.
REAL_SETS = tuple(
    path for folder in (ROOT / "labels", ROOT / "labels" / "heldout") if (path := latest_version(folder, "real"))
)


def write_sentences(path: Path, count: int) -> None:
    """``count`` distinct real sentences in article order, with their neighbours and articles.

    The encoder embeds each distinct text of a batch once, so repeating
    sentences would flatter the default model: past the real sets' sentences
    each round gets its own suffix, neighbours included.
    """
    rows = [json.loads(line) for source in REAL_SETS for line in source.read_text(encoding="utf-8").splitlines()]
    with path.open("wb") as handle:
        for number in range(count):
            row, round_number = rows[number % len(rows)], number // len(rows)
            suffix = f" ({round_number})" if round_number else ""
            neighbours = {key: row[key] + suffix if row[key] else "" for key in ("prev", "next")}
            # With their articles, as ingest writes them: the article-context stage reads each article whole.
            article = {"article_id": row["article_id"] + suffix, "paragraph": row["paragraph"]}
            record = {"sentence_id": f"s{number:08d}", "text": row["text"] + suffix, **neighbours, **article}
            handle.write(orjson.dumps(record) + b"\n")


def bench_sentences(name: str, folder: Path, count: int, runs: int, results: dict[str, object]) -> None:
    source = folder / f"{name}-sentences.jsonl"
    write_sentences(source, count)
    print(f"\n## {name}: classify --sentences, {count:,} sentences, {runs} runs, min / median / max")
    for jobs in (1, 2):
        command = [*ANNOTATE, "classify", "--sentences", str(source), "-o", str(folder / "out.jsonl"), "--force", "-q", "--model", name, "--jobs", str(jobs)]
        walls, peaks, cpus = repeat(runs, lambda command=command: measure(command))
        rates = [count / wall for wall in walls]
        print(f"--jobs {jobs}: {spread(rates, 0)} sentences/s, wall {spread(walls)} s, CPU {spread(cpus)} s, peak RSS {spread(peaks, 0)} MiB")
        results[f"{name}_sentences_jobs{jobs}"] = {"sentences": count, "wall": walls, "cpu": cpus, "peak_rss_mib": peaks}


def bench_load(name: str, runs: int, results: dict[str, object]) -> None:
    print(f"\n## {name}: load_model in a fresh process (imports included), {runs} runs, min / median / max")
    for quick in (False, True):
        code = f"from annotate.classify import load_model; load_model({name!r}, quick={quick}).predict_proba(['warm'])"
        walls, peaks, _ = repeat(runs, lambda code=code: measure([sys.executable, "-c", code]))
        print(f"quick={quick}: wall {spread(walls)} s, peak RSS {spread(peaks, 0)} MiB (first prediction included)")
        results[f"{name}_load_quick{quick}"] = {"wall": walls, "peak_rss_mib": peaks}


def bench_one_article(name: str, runs: int, results: dict[str, object]) -> None:
    command = [*ANNOTATE, "classify", str(ONE_ARTICLE), "--model", name]
    measure(command)  # warm the file cache once, as an everyday call would find it
    walls, peaks, cpus = repeat(runs, lambda: measure(command))
    print(f"\n## {name}: annotate classify {ONE_ARTICLE.name}, {runs} runs, min / median / max")
    print(f"wall {spread(walls)} s, CPU {spread(cpus)} s, peak RSS {spread(peaks, 0)} MiB")
    results[f"{name}_one_article"] = {"wall": walls, "cpu": cpus, "peak_rss_mib": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-sentences", type=int, default=4_000)
    parser.add_argument("--fast-sentences", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args()
    os.chdir(ROOT)
    print(f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, load average {os.getloadavg()[0]:.2f} at start")
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as temporary:
        for name, count in (("default", args.default_sentences), ("fast", args.fast_sentences)):
            bench_load(name, args.runs, results)
            bench_one_article(name, args.runs, results)
            bench_sentences(name, Path(temporary), count, args.runs, results)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

"""Corpus-scale benchmark of ``annotate classify`` (issue 5): prints every figure with min/median/max.

Generates its own corpus from the starter label set (never from the held-out
fixture), then times, over ``--runs`` runs each:

1. ``classify --sentences`` on N pre-split sentences (one process and
   ``--jobs 2``) against the unavoidable work: reading, parsing and writing
   the same JSONL with orjson plus the bare scikit-learn ``predict_proba``;
   peak RSS of the whole process tree.
2. ``classify`` of M articles (one JSONL archive): articles/s, sentences/s.
3. ``annotate classify one-article.txt``: wall time with start-up and model load.

Every command runs as a subprocess, as a user would run it, with the fast
model (``ANNOTATE_BENCH_MODEL=default`` for the other; ``bench_models.py``
compares the two). ``bench_train.py`` covers training. Run from the
repository root::

    .venv/bin/python benchmarks/bench_classify.py                     # full size (about 25 minutes on an idle 2-core machine)
    .venv/bin/python benchmarks/bench_classify.py --sentences 100000 --articles 5000 --runs 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson
import psutil

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "labels" / "starter-v1.jsonl"
ONE_ARTICLE = ROOT / "examples" / "en_wire_regulation.txt"
ANNOTATE = [sys.executable, "-m", "annotate"]
BATCH = 4096
# Corpus scale is the fast model's job; the default model's figures are in bench_models.py.
MODEL = os.environ.get("ANNOTATE_BENCH_MODEL", "fast")


def starter_texts() -> list[str]:
    return [json.loads(line)["text"] for line in STARTER.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_sentences(path: Path, count: int, texts: Sequence[str]) -> None:
    """Records shaped like ``annotate ingest`` output, 24 sentences to an article."""
    rng = random.Random(5)
    with path.open("wb") as handle:
        for number in range(count):
            article, index = divmod(number, 24)
            text = texts[rng.randrange(len(texts))]
            record = {
                "article_id": f"a{article:07d}",
                "sentence_id": f"a{article:07d}-{index:02d}",
                "paragraph": 1 + index // 3,
                "index": index,
                "text": text,
                "lang": "zh" if any("\u4e00" <= ch <= "\u9fff" for ch in text[:20]) else "en",
                "title": f"Generated article {article}",
                "source": "bench",
                "prev": texts[(number - 1) % len(texts)] if index else "",
                "next": texts[(number + 1) % len(texts)] if index < 23 else "",
            }
            handle.write(orjson.dumps(record) + b"\n")


def write_articles(path: Path, count: int, texts: Sequence[str]) -> None:
    """One article per JSONL line: a title and 8 paragraphs of 3 sentences."""
    rng = random.Random(7)
    with path.open("wb") as handle:
        for number in range(count):
            paragraphs = [" ".join(rng.choice(texts) for _ in range(3)) for _ in range(8)]
            handle.write(
                orjson.dumps({"id": f"art-{number}", "title": f"Generated article {number}", "text": "\n\n".join(paragraphs)}) + b"\n"
            )


def measure(command: Sequence[str], *, stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, float]:
    """Wall seconds, peak RSS (MiB, summed over the process and its children, sampled every 50 ms) and CPU seconds.

    CPU seconds (user + system of the command and every process it started)
    are the steadier figure when other work shares the machine.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    process = psutil.Popen(list(command), stdout=stdout, stderr=subprocess.PIPE)
    peak = 0
    while process.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{process.stderr.read().decode()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, peak / 2**20, cpu


def bare_run(source: Path, target: Path) -> dict[str, float]:
    """The unavoidable work, in this process: JSONL in/out with orjson, and scikit-learn's predict_proba.

    Each phase is timed as wall seconds and as CPU seconds (``<phase>_cpu``).
    """
    from annotate.classify import load_model

    pipeline = load_model(MODEL).pipeline
    timings: dict[str, float] = {}

    def timed(name: str, work: Callable[[], object]) -> object:
        wall, cpu = time.perf_counter(), time.process_time()
        result = work()
        timings[name], timings[f"{name}_cpu"] = time.perf_counter() - wall, time.process_time() - cpu
        return result

    def copy_jsonl() -> None:
        with source.open("rb") as reader, target.open("wb") as writer:
            for line in reader:
                record = orjson.loads(line)
                record["labels"], record["scores"] = [], [0.0, 0.0, 0.0, 0.0]
                writer.write(orjson.dumps(record) + b"\n")

    timed("io", copy_jsonl)
    with source.open("rb") as reader:
        texts = [orjson.loads(line)["text"] for line in reader]
    batches = [texts[begin : begin + BATCH] for begin in range(0, len(texts), BATCH)]
    timed("predict_proba", lambda: [pipeline.predict_proba(batch) for batch in batches])
    vectors = timed("vectorise", lambda: [pipeline[:-1].transform(batch) for batch in batches])
    timed("classifier_on_vectors", lambda: [pipeline[-1].predict_proba(matrix) for matrix in vectors])  # type: ignore[union-attr]
    return timings


def spread(values: Sequence[float], digits: int = 2) -> str:
    return f"{min(values):.{digits}f} / {statistics.median(values):.{digits}f} / {max(values):.{digits}f}"


def repeat(runs: int, function: Callable[[], tuple[float, float, float]]) -> tuple[list[float], list[float], list[float]]:
    walls, peaks, cpus = [], [], []
    for _ in range(runs):
        wall, peak, cpu = function()
        walls.append(wall)
        peaks.append(peak)
        cpus.append(cpu)
    return walls, peaks, cpus


def bench_sentences(folder: Path, count: int, runs: int, texts: Sequence[str], results: dict[str, object]) -> None:
    source = folder / "sentences.jsonl"
    write_sentences(source, count, texts)
    print(
        f"\n## classify --sentences: {count:,} sentences ({source.stat().st_size / 2**20:.0f} MiB of JSONL), {runs} runs, min / median / max"
    )

    bare = [bare_run_in_subprocess(source, folder / "bare.jsonl") for _ in range(runs)]

    def row(label: str, phase: str) -> None:
        walls, cpus = [b[phase] for b in bare], [b[f"{phase}_cpu"] for b in bare]
        print(f"{label:<38} wall {spread(walls)} s, CPU {spread(cpus)} s = {spread([count / w for w in walls], 0)} sentences/s")

    for run in bare:
        run["unavoidable"], run["unavoidable_cpu"] = run["io"] + run["predict_proba"], run["io_cpu"] + run["predict_proba_cpu"]
    row("read+parse+write JSONL (orjson)", "io")
    row("bare predict_proba (texts, batches)", "predict_proba")
    row("  vectorising alone", "vectorise")
    row("  classifier on the same vectors", "classifier_on_vectors")
    row("unavoidable work (I/O + predict_proba)", "unavoidable")
    unavoidable = statistics.median(b["unavoidable"] for b in bare)
    unavoidable_cpu = statistics.median(b["unavoidable_cpu"] for b in bare)

    for jobs in (1, 2):
        output = folder / f"out-{jobs}.jsonl"
        command = [*ANNOTATE, "classify", "--sentences", str(source), "-o", str(output), "--force", "-q", "--jobs", str(jobs), "--model", MODEL]
        walls, peaks, cpus = repeat(runs, lambda command=command: measure(command))
        print(
            f"annotate classify --jobs {jobs:<13} wall {spread(walls)} s, CPU {spread(cpus)} s = {spread([count / w for w in walls], 0)} sentences/s, peak RSS {spread(peaks, 0)} MiB"
        )
        print(
            f"  throughput / unavoidable-work throughput: by wall {spread([unavoidable / w for w in walls])}"
            + (f", by CPU {spread([unavoidable_cpu / c for c in cpus])}" if jobs == 1 else "")
        )
        results[f"sentences_jobs{jobs}"] = {"wall": walls, "cpu": cpus, "peak_rss_mib": peaks}
    results["sentences_bare"] = bare


def bare_run_in_subprocess(source: Path, target: Path) -> dict[str, float]:
    # A fresh process per run, like the toolkit runs, so neither gets a warm heap the other lacks.
    code = f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import bench_classify as b; from pathlib import Path; print(json.dumps(b.bare_run(Path(sys.argv[1]), Path(sys.argv[2]))))"
    completed = subprocess.run([sys.executable, "-c", code, str(source), str(target)], capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.splitlines()[-1])


def bench_articles(folder: Path, count: int, runs: int, texts: Sequence[str], results: dict[str, object]) -> None:
    source = folder / "articles.jsonl"
    write_articles(source, count, texts)
    print(
        f"\n## ingest + classify: {count:,} articles ({source.stat().st_size / 2**20:.0f} MiB JSONL archive), {runs} runs, min / median / max"
    )
    for jobs in (1, 2):
        output = folder / f"articles-out-{jobs}.jsonl"
        command = [
            *ANNOTATE,
            "classify",
            str(source),
            "-o",
            str(output),
            "--digest",
            str(folder / f"digest-{jobs}.jsonl"),
            "--force",
            "-q",
            "--jobs",
            str(jobs),
            "--model",
            MODEL,
        ]
        walls, peaks, cpus = repeat(runs, lambda command=command: measure(command))
        with output.open("rb") as handle:
            sentences = sum(1 for _ in handle)
        print(
            f"annotate classify --jobs {jobs}  wall {spread(walls)} s, CPU {spread(cpus)} s = {spread([count / w for w in walls], 0)} articles/s, "
            f"{spread([sentences / w for w in walls], 0)} sentences/s ({sentences:,} sentences), peak RSS {spread(peaks, 0)} MiB"
        )
        results[f"articles_jobs{jobs}"] = {"wall": walls, "cpu": cpus, "peak_rss_mib": peaks, "sentences": sentences}


def bench_one_article(runs: int, results: dict[str, object]) -> None:
    command = [*ANNOTATE, "classify", str(ONE_ARTICLE), "--model", MODEL]
    measure(command)  # warm the file cache once, as an everyday call would find it
    walls, peaks, cpus = repeat(runs, lambda: measure(command))
    print(f"\n## annotate classify {ONE_ARTICLE.name} (start-up and model load included), {runs} runs, min / median / max")
    print(f"wall {spread(walls)} s, CPU {spread(cpus)} s, peak RSS {spread(peaks, 0)} MiB (target: under 1.5 s wall)")
    results["one_article"] = {"wall": walls, "cpu": cpus, "peak_rss_mib": peaks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=1_000_000, help="pre-split sentences to classify (0 skips)")
    parser.add_argument("--articles", type=int, default=50_000, help="articles to ingest and classify (0 skips)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each --sentences measurement")
    parser.add_argument("--article-runs", type=int, default=3, help="runs of each article measurement")
    parser.add_argument("--one-article-runs", type=int, default=10)
    parser.add_argument("--workdir", type=Path, help="where to generate the corpus (default: a temporary folder)")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    args = parser.parse_args()

    os.chdir(ROOT)
    print(
        f"machine: {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, load average {os.getloadavg()[0]:.2f} at start"
    )
    texts = starter_texts()
    results: dict[str, object] = {}
    with tempfile.TemporaryDirectory(dir=args.workdir) as temporary:
        folder = Path(temporary)
        if args.one_article_runs:
            bench_one_article(args.one_article_runs, results)
        if args.sentences:
            bench_sentences(folder, args.sentences, args.runs, texts, results)
        if args.articles:
            bench_articles(folder, args.articles, args.article_runs, texts, results)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()

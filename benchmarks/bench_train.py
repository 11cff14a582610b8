"""Benchmark ``annotate train`` on a generated label set: seconds and peak RSS, min/median/max.

The label set repeats the starter set's rows under new sentence and article
ids until it has ``--rows`` sentences (the held-out fixture is never used).
Two measurements: ``train --no-eval`` (fit plus grouped out-of-fold
thresholds) and plain ``train`` (adds nested grouped cross-validation).
Run from the repository root::

    .venv/bin/python benchmarks/bench_train.py --rows 20000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from bench_classify import ANNOTATE, ROOT, STARTER, measure, repeat, spread


def write_label_set(path: Path, rows: int) -> None:
    starter = [json.loads(line) for line in STARTER.read_text(encoding="utf-8").splitlines() if line.strip()]
    with path.open("w", encoding="utf-8") as handle:
        for number in range(rows):
            copy, index = divmod(number, len(starter))
            row = dict(starter[index])
            row["sentence_id"] = f"{row['sentence_id']}-c{copy}"
            row["article_id"] = f"{row['article_id']}-c{copy}"
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of train --no-eval")
    parser.add_argument("--eval-runs", type=int, default=1, help="runs of train with cross-validation (0 skips)")
    args = parser.parse_args()
    os.chdir(ROOT)
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        labels = folder / "labels.jsonl"
        write_label_set(labels, args.rows)
        for flags, runs in ((["--no-eval"], args.runs), ([], args.eval_runs)):
            if not runs:
                continue
            command = [*ANNOTATE, "train", "--labels", str(labels), "-o", str(folder / "model"), "--force", *flags]
            walls, peaks, cpus = repeat(runs, lambda command=command: measure(command))
            print(
                f"annotate train {' '.join(flags) or '(with cross-validation)':<26} on {args.rows:,} sentences, {runs} runs, min / median / max: "
                f"wall {spread(walls, 1)} s, CPU {spread(cpus, 1)} s, peak RSS {spread(peaks, 0)} MiB"
            )
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()

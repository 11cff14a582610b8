"""Push and pull timings against a running Label Studio, ours beside the bare SDK's.

Not part of the test suite; run on demand against a server you can fill with
throw-away projects (each run creates its own, titled "bench ... <time>"):

    LABEL_STUDIO_URL=http://127.0.0.1:8080 LABEL_STUDIO_API_KEY=... \\
        python benchmarks/bench_studio.py [--push 20000] [--pull 5000] [--model models/default]

Measures
- push: ``studio.push`` of N new sentences (batches of 500) into a new project,
  the same with the model's predictions, the idempotent re-push of the same N
  (all skipped), and bare ``projects.import_tasks`` calls of the same tasks;
- pull: ``studio.pull`` of a project with M annotated tasks (export, raw
  snapshot, label set), and the bare SDK export: ``exports.create`` + ``get`` +
  ``download``, and the older one-request ``exports.download_sync``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from label_studio_sdk import LabelStudio

from annotate import studio
from annotate.labels import LABELS
from annotate.schemas import Sentence

BATCH = 500


def sentences(n: int, prefix: str) -> list[Sentence]:
    words = [
        "regulators",
        "approved",
        "the",
        "triage",
        "tool",
        "after",
        "investors",
        "funded",
        "a",
        "start-up",
        "whose",
        "model",
        "hallucinated",
        "doses",
    ]
    out = []
    for i in range(n):
        text = " ".join(words[(i + k) % len(words)] for k in range(18)) + f" ({prefix} {i})."
        out.append(
            Sentence(
                article_id=f"{prefix}-a{i // 20}",
                sentence_id=f"{prefix}-{i:06d}",
                paragraph=1 + (i % 20) // 4,
                index=i % 20,
                text=text,
                lang="en",
                title=f"Benchmark article {i // 20}",
                source="bench",
                prev="The previous sentence of the article, for context." if i % 20 else "",
                next="The next sentence of the article, for context." if i % 20 != 19 else "",
            )
        )
    return out


def timed(what: str, fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - started
    print(f"  {what}: {seconds:.2f} s", file=sys.stderr)
    return seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL"))
    parser.add_argument("--push", type=int, default=20_000, help="sentences to push")
    parser.add_argument("--pull", type=int, default=5_000, help="annotated tasks to pull")
    parser.add_argument("--model", type=Path, default=Path("models/default"), help="model for the push with predictions ('' to skip)")
    args = parser.parse_args()
    api_key = os.environ.get("LABEL_STUDIO_API_KEY")
    if not args.url or not api_key:
        sys.exit("set LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY (or pass --url)")
    stamp = time.strftime("%H%M%S")
    config = studio.read_label_config()
    http = httpx.Client(timeout=600.0, follow_redirects=True)
    bare = LabelStudio(base_url=args.url, api_key=api_key, httpx_client=http)
    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}

    with studio.connect(args.url, api_key, timeout=600.0) as client:
        # --- push -------------------------------------------------------------------------
        n = args.push
        print(f"push {n} sentences", file=sys.stderr)
        rows = sentences(n, f"push{stamp}")
        seconds, _ = timed("studio.push", lambda: studio.push(client, rows, project=f"bench push {stamp}", batch_size=BATCH))
        results["studio.push"] = {"sentences": n, "seconds": round(seconds, 2), "tasks_per_s": round(n / seconds)}
        seconds, report = timed(
            "studio.push again (all present)", lambda: studio.push(client, rows, project=f"bench push {stamp}", batch_size=BATCH)
        )
        assert report.tasks_created == 0 and report.tasks_skipped_existing == n
        results["studio.push repeated"] = {"sentences": n, "seconds": round(seconds, 2)}

        project = bare.projects.create(title=f"bench bare push {stamp}", label_config=config)
        tasks = studio.build_tasks(rows)

        def bare_push() -> None:
            for start in range(0, n, BATCH):
                bare.projects.import_tasks(project.id, request=tasks[start : start + BATCH])  # type: ignore[arg-type]

        seconds, _ = timed("SDK projects.import_tasks", bare_push)
        results["sdk import_tasks"] = {"sentences": n, "seconds": round(seconds, 2), "tasks_per_s": round(n / seconds)}

        if str(args.model):
            from annotate.classify import load_model

            model = load_model(args.model)
            rows_p = sentences(n, f"pred{stamp}")
            seconds, _ = timed(
                "studio.push with predictions",
                lambda: studio.push(
                    client,
                    rows_p,
                    project=f"bench push predictions {stamp}",
                    predictor=model.predict,
                    model_version=model.card.model_id,
                    batch_size=BATCH,
                ),
            )
            results["studio.push with predictions"] = {"sentences": n, "seconds": round(seconds, 2), "tasks_per_s": round(n / seconds)}
            rows_q = sentences(n, f"predbare{stamp}")
            project = bare.projects.create(title=f"bench bare push predictions {stamp}", label_config=config)

            def bare_push_predictions() -> None:
                for start in range(0, n, BATCH):
                    batch = rows_q[start : start + BATCH]
                    outputs = model.predict([s.text for s in batch])
                    predictions = [
                        {
                            "model_version": model.card.model_id,
                            "score": 0.5,
                            "result": [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": labels}}]
                            if labels
                            else [],
                        }
                        for labels, _ in outputs
                    ]
                    bare.projects.import_tasks(project.id, request=studio.build_tasks(batch, predictions))  # type: ignore[arg-type]

            seconds, _ = timed("SDK projects.import_tasks with predictions", bare_push_predictions)
            results["sdk import_tasks with predictions"] = {"sentences": n, "seconds": round(seconds, 2), "tasks_per_s": round(n / seconds)}

        # --- pull -------------------------------------------------------------------------
        m = args.pull
        print(f"pull {m} annotated tasks", file=sys.stderr)
        rows = sentences(m, f"pull{stamp}")
        annotated = [
            {
                **task,
                "annotations": [
                    {"result": [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": [LABELS[i % 4]]}}]}
                ],
            }
            for i, task in enumerate(studio.build_tasks(rows))
        ]
        project = bare.projects.create(title=f"bench pull {stamp}", label_config=config)
        for start in range(0, m, BATCH):
            bare.projects.import_tasks(project.id, request=annotated[start : start + BATCH])  # type: ignore[arg-type]
        with tempfile.TemporaryDirectory() as labels_dir:
            seconds, pulled = timed("studio.pull", lambda: studio.pull(client, project=f"bench pull {stamp}", labels_dir=Path(labels_dir)))
        assert pulled.label_set.rows == m, pulled.label_set
        results["studio.pull"] = {"tasks": m, "seconds": round(seconds, 2)}

        def bare_export() -> int:
            export = bare.projects.exports.create(project.id, title="bench")
            while export.status not in ("completed", "failed"):
                time.sleep(0.5)
                export = bare.projects.exports.get(project.id, export_pk=export.id)  # type: ignore[assignment]
            data = json.loads(b"".join(bare.projects.exports.download(project.id, export_pk=export.id, export_type="JSON")))  # type: ignore[arg-type]
            return len(data)

        seconds, count = timed("SDK exports.create/get/download", bare_export)
        assert count == m
        results["sdk exports.create/get/download"] = {"tasks": m, "seconds": round(seconds, 2)}
        seconds, _ = timed(
            "SDK exports.download_sync",
            lambda: b"".join(bare.projects.exports.download_sync(project.id, export_type="JSON", download_all_tasks=True)),
        )
        results["sdk exports.download_sync"] = {"tasks": m, "seconds": round(seconds, 2)}
    http.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

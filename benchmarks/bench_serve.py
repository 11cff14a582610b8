"""``annotate serve`` timings: /predict latency, and how long a retraining takes to reach annotators.

Not part of the test suite; run on demand:

    python benchmarks/bench_serve.py [--model models/default] [--requests 300]
    LABEL_STUDIO_URL=http://127.0.0.1:8080 LABEL_STUDIO_API_KEY=... python benchmarks/bench_serve.py --retrain

Starts ``annotate serve`` (basic auth, as in production) on a free port and measures
- /predict latency (p50/p95/max, ms) for 1 task and for 100 tasks per request, one client
  after another on a kept-alive connection;
- the same with 20 concurrent clients, and the requests per second they get;
- with ``--retrain`` (needs a Label Studio started with USE_DEFAULT_BANNED_SUBNETS=false):
  a new project, the backend connected, 20 annotations submitted through the API; then the
  training time the backend reports (pull + train) and the time from the 20th annotation
  until /predict answers with the new version and until Label Studio shows it. Training reads
  ``--labels`` (default: a copy of labels/, the whole starter set), as a real backend would.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "The start-up raised 40 million dollars in a Series B round led by venture investors.",
    "Regulators said the triage tool needs approval before hospitals may deploy it.",
    "Doctors warned that the chatbot hallucinated dosages and endangered patients.",
    "The vendor signed 12 hospital customers and launched a paid subscription.",
    "The weather in the capital was mild on the second day of the conference.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tasks(n: int, offset: int = 0) -> list[dict[str, Any]]:
    return [{"id": i, "data": {"text": f"{SENTENCES[i % len(SENTENCES)]} ({i})"}} for i in range(offset, offset + n)]


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(1000 * statistics.median(ordered), 2),
        "p95_ms": round(1000 * ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(1000 * ordered[-1], 2),
    }


class Backend:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.auth = ("bench", "Pw-" + secrets.token_hex(12))
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **env, "ANNOTATE_BACKEND_USER": self.auth[0], "ANNOTATE_BACKEND_PASSWORD": self.auth[1]}
        self.log = tempfile.NamedTemporaryFile(prefix="bench-serve-", suffix=".log", delete=False)
        command = [str(Path(sys.executable).parent / "annotate"), "serve", "--port", str(self.port), "--log-level", "warning", *args]
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", auth=self.auth, timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError(f"annotate serve did not start; see {self.log.name}")

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.url}/health", auth=self.auth, timeout=10).json())

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def sequential(backend: Backend, size: int, requests: int) -> dict[str, float]:
    body = {"tasks": tasks(size)}
    samples = []
    with httpx.Client(auth=backend.auth, timeout=60) as client:
        for _ in range(5):  # warm-up
            client.post(f"{backend.url}/predict", json=body).raise_for_status()
        for _ in range(requests):
            started = time.perf_counter()
            client.post(f"{backend.url}/predict", json=body).raise_for_status()
            samples.append(time.perf_counter() - started)
    return percentiles(samples)


def concurrent(backend: Backend, size: int, clients: int, per_client: int) -> dict[str, float]:
    body = {"tasks": tasks(size)}
    samples: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients + 1)

    def one_client() -> None:
        mine = []
        with httpx.Client(auth=backend.auth, timeout=120) as client:
            client.post(f"{backend.url}/predict", json=body).raise_for_status()
            barrier.wait()
            for _ in range(per_client):
                started = time.perf_counter()
                client.post(f"{backend.url}/predict", json=body).raise_for_status()
                mine.append(time.perf_counter() - started)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=one_client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return {**percentiles(samples), "clients": clients, "requests_per_s": round(len(samples) / wall, 1)}


def retraining(args: argparse.Namespace) -> dict[str, Any]:
    from label_studio_sdk import LabelStudio

    from annotate import studio
    from annotate.schemas import Sentence

    url, key = os.environ["LABEL_STUDIO_URL"], os.environ["LABEL_STUDIO_API_KEY"]
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    labels = work / "labels"
    shutil.copytree(args.labels, labels, ignore=shutil.ignore_patterns("raw"))
    backend = Backend(
        ["--model", str(args.model), "--labels", str(labels), "--versions", str(work / "versions"), "--retrain-after", "20", "--debounce", "1"],
        {"LABEL_STUDIO_URL": url, "LABEL_STUDIO_API_KEY": key},
    )
    try:
        first = backend.health()["model_version"]
        project = f"bench serve {time.strftime('%Y%m%dT%H%M%S')}"
        rows = [
            Sentence(article_id=f"bench-a{i // 5}", sentence_id=f"bench-{i}", paragraph=1, index=i % 5, text=f"{SENTENCES[i % 5]} ({i})", lang="en", title="Bench", source="bench")
            for i in range(40)
        ]
        with studio.connect(url, key) as client:
            project_id = studio.push(client, rows, project=project).project_id
            studio.connect_backend(client, project=project, backend_url=backend.url, auth=backend.auth)
        sdk = LabelStudio(base_url=url, api_key=key)
        ids = {t.data["sentence_id"]: t.id for t in sdk.tasks.list(project=project_id, fields="all", include="id,data", page_size=100)}
        labels_for = ["financing", "regulatory_barrier", "safety_risk", "commercialization", None]
        for i, row in enumerate(rows[:20]):
            label = labels_for[i % 5]
            result = [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": [label]}}] if label else []
            sdk.annotations.create(id=ids[row.sentence_id], result=result)
        submitted = time.perf_counter()
        while (health := backend.health())["model_version"] == first:
            if health["retraining"]["last_error"]:
                raise RuntimeError(health["retraining"]["last_error"])
            time.sleep(0.1)
        served = time.perf_counter() - submitted
        while sdk.projects.get(project_id).model_version != health["model_version"]:
            time.sleep(0.1)
        shown = time.perf_counter() - submitted
        return {
            "training_sentences": health["retraining"]["last_sentences"],
            "pull_and_train_s": health["retraining"]["last_seconds"],
            "annotation_to_served_s": round(served, 2),
            "annotation_to_label_studio_s": round(shown, 2),
            "debounce_s": 1.0,
        }
    finally:
        backend.stop()
        shutil.rmtree(work, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "default")
    parser.add_argument("--labels", type=Path, default=ROOT / "labels")
    parser.add_argument("--requests", type=int, default=300, help="requests per sequential measurement")
    parser.add_argument("--retrain", action="store_true", help="also measure a retraining (needs LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY)")
    args = parser.parse_args()

    results: dict[str, Any] = {"machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"}
    backend = Backend(["--model", str(args.model), "--versions", tempfile.mkdtemp(prefix="bench-serve-"), "--retrain-after", "0"], {})
    try:
        results["predict 1 task"] = sequential(backend, 1, args.requests)
        results["predict 100 tasks"] = sequential(backend, 100, max(50, args.requests // 3))
        results["predict 1 task, 20 clients"] = concurrent(backend, 1, 20, max(10, args.requests // 10))
        results["predict 100 tasks, 20 clients"] = concurrent(backend, 100, 20, 5)
    finally:
        backend.stop()
    if args.retrain:
        results["retraining"] = retraining(args)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""``annotate serve`` as Label Studio's ML backend, against a real Label Studio and a real backend process (issue 11).

The backend trains on a tiny label set in a temporary folder, so a
retraining takes seconds; each test has its own project and backend.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from click.testing import CliRunner

from annotate import studio
from annotate.classify import Model, load_model
from annotate.cli import cli
from annotate.dataset import write_label_set
from annotate.labels import LABELS
from annotate.schemas import LabeledSentence, Recipe, Sentence
from annotate.train import train

from .conftest import sdk

if TYPE_CHECKING:
    from .conftest import BackendServer, StudioServer

TOPICS = {
    "financing": "The start-up raised {n} million dollars from venture investors in a new funding round.",
    "regulatory_barrier": "Regulators said triage tool {n} needs approval before hospitals may deploy it.",
    "safety_risk": "Doctors warned that model {n} hallucinated dosages and endangered patients.",
    "commercialization": "The vendor signed {n} hospital customers and launched a paid subscription.",
    "": "The weather in the capital was mild on day {n} of the conference.",
}


def sentences(n: int, prefix: str) -> list[Sentence]:
    topics = list(TOPICS.values())
    return [
        Sentence(
            article_id=f"{prefix}-a{i // 5}",
            sentence_id=f"{prefix}-{i:04d}",
            paragraph=1,
            index=i % 5,
            text=topics[i % 5].format(n=i),
            lang="en",
            title=f"Article {i // 5}",
            source="tests",
        )
        for i in range(n)
    ]


def truth(sentence: Sentence) -> list[str]:
    return [label for label, template in TOPICS.items() if label and sentence.text == template.format(n=int(sentence.sentence_id.rsplit("-", 1)[1]))]


# Not the default recipe, so the test sees a retraining keep the served model's.
TINY_RECIPE = Recipe(c=10.0)


@pytest.fixture
def tiny_model(tmp_path: Path) -> tuple[Path, Path]:
    """A 60-sentence label set and a model trained on it: ``(labels_dir, model_dir)``."""
    rows = [
        LabeledSentence(**s.model_dump(include={"sentence_id", "article_id", "text", "lang", "title", "source"}), **{label: int(label in truth(s)) for label in LABELS}, decision="author")  # type: ignore[arg-type]
        for s in sentences(60, "base")
    ]
    labels_dir, model_dir = tmp_path / "labels", tmp_path / "model"
    write_label_set(rows, labels_dir=labels_dir, name="base", origin="tests")
    train(rows, model_dir=model_dir, recipe=TINY_RECIPE, evaluate=False)
    return labels_dir, model_dir


def start_backend(annotate_backend: Callable[..., BackendServer], server: StudioServer, labels_dir: Path, model_dir: Path, *args: str) -> BackendServer:
    env = {"LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.api_key}
    common = ["--model", str(model_dir), "--labels", str(labels_dir), "--versions", str(model_dir.parent / "versions")]
    return annotate_backend(*common, *args, env=env)


def run_cli(args: list[str], env: dict[str, str]) -> Any:
    return CliRunner().invoke(cli, args, env=env, catch_exceptions=False)


def connect_cli(server: StudioServer, backend: BackendServer, project: str) -> dict[str, Any]:
    env = {"LABEL_STUDIO_URL": server.url, "LABEL_STUDIO_API_KEY": server.api_key, "ANNOTATE_BACKEND_PASSWORD": backend.password}
    result = run_cli(["studio", "connect", "--project", project, "--backend", backend.url, "--json"], env)
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def open_task(server: StudioServer, task_id: int, project_id: int) -> dict[str, Any]:
    """The task as the labelling page asks for it (the data manager's quick view)."""
    answer = httpx.get(
        f"{server.url}/api/tasks/{task_id}", params={"project": project_id}, headers={"Authorization": f"Token {server.api_key}"}, timeout=120
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def import_task(server: StudioServer, project_id: int, text: str, sentence_id: str) -> int:
    """A task imported through the API with no prediction; returns its id."""
    before = {t.id for t in sdk(server).tasks.list(project=project_id, fields="task_only", page_size=5000)}
    data = {"text": text, "title": "Imported elsewhere", "prev": "", "next": "", "sentence_id": sentence_id}
    sdk(server).projects.import_tasks(project_id, request=[{"data": data}])
    after = {t.id for t in sdk(server).tasks.list(project=project_id, fields="task_only", page_size=5000)}
    (new,) = after - before
    return int(new)


def choices(labels: list[str]) -> list[dict[str, Any]]:
    return [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": labels}}] if labels else []


def predicted(model: Model, text: str) -> list[str]:
    return model.predict([text])[0][0]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)


# --- the loop -------------------------------------------------------------------------------------


def test_connect_predict_on_open_and_retrain_after_20_annotations(
    studio_server: StudioServer, annotate_backend: Callable[..., BackendServer], tiny_model: tuple[Path, Path]
) -> None:
    labels_dir, model_dir = tiny_model
    first = load_model(model_dir)
    backend = start_backend(annotate_backend, studio_server, labels_dir, model_dir, "--retrain-after", "20", "--debounce", "2")
    project = "backend loop"
    with studio.connect(studio_server.url, studio_server.api_key) as client:
        pushed = studio.push(client, sentences(30, "loop"), project=project)
    project_id = pushed.project_id

    report = connect_cli(studio_server, backend, project)
    assert "backend registered" in report["changed"] and "webhook" in report["changed"]
    assert report["backend"]["up"] and report["backend"]["model_version"] == first.card.model_id
    again = connect_cli(studio_server, backend, project)
    assert again["changed"] == [], "a second connect changed something"

    # What Label Studio now holds: auth, title = version = the project's version, predictions on open, the webhook.
    ls = sdk(studio_server)
    (registered,) = ls.ml.list(project=project_id)
    assert (registered.auth_method, registered.basic_auth_user, registered.title) == ("BASIC_AUTH", backend.user, first.card.model_id)
    settings = ls.projects.get(project_id)
    assert settings.model_version == first.card.model_id and settings.show_collab_predictions and settings.evaluate_predictions_automatically
    assert settings.show_instruction and "Label guide" in (settings.expert_instruction or "")
    (hook,) = [h for h in ls.webhooks.list(project=str(project_id)) if h.url == f"{backend.url}/webhook"]
    assert hook.headers["Authorization"].startswith("Basic ") and not hook.send_for_all_actions

    # A task imported through the API, with no prediction, gets one when opened.
    text = "Investors poured 80 million dollars into the start-up in a new funding round."
    task_id = import_task(studio_server, project_id, text, "imported-1")
    opened = open_task(studio_server, task_id, project_id)
    (prediction,) = opened["predictions"]
    assert prediction["model_version"] == first.card.model_id
    assert prediction["result"] == choices(predicted(first, text)) and predicted(first, text) == ["financing"]
    # A task whose sentence is empty opens without a prediction (and without a 500).
    empty_id = import_task(studio_server, project_id, "", "imported-empty")
    assert open_task(studio_server, empty_id, project_id)["predictions"] == []

    # 20 annotations through the API: exactly one retraining, then Label Studio shows the new version.
    annotator = studio_server.create_annotator("loop-annotator")
    as_annotator = sdk(studio_server, annotator.api_key)
    tasks = {t.data["sentence_id"]: t.id for t in ls.tasks.list(project=project_id, fields="all", include="id,data", page_size=5000)}
    for sentence in sentences(30, "loop")[:20]:
        as_annotator.annotations.create(id=tasks[sentence.sentence_id], result=choices(truth(sentence)))
    status = wait_for(lambda: (s := backend.health())["retraining"]["last_finished"] and s, 300, "the retraining")
    assert status["retraining"]["last_error"] is None
    second = status["model_version"]
    assert second != first.card.model_id and second.startswith("live-0001-")
    time.sleep(5)  # past the debounce: a second training would have started
    status = backend.health()["retraining"]
    assert (status["trainings"], status["failures"], status["running"], status["last_error"]) == (1, 0, False, None)
    assert status["last_sentences"] == 60 + 20
    assert load_model(model_dir.parent / "versions" / second.rsplit("-", 1)[0]).card.recipe == TINY_RECIPE == first.card.recipe
    assert (labels_dir / f"studio_p{project_id}-v1.jsonl").exists()

    (registered,) = ls.ml.list(project=project_id)
    assert (registered.model_version, registered.title) == (second, second)
    assert ls.projects.get(project_id).model_version == second
    newer_id = import_task(studio_server, project_id, "Regulators said the new triage tool needs approval first.", "imported-2")
    (prediction,) = open_task(studio_server, newer_id, project_id)["predictions"]
    assert prediction["model_version"] == second
    # The label stream asks the backend again for a task that lacks the project's version; the quick
    # view asks only for tasks without any prediction, so the first imported task keeps its old one.
    upcoming = httpx.get(f"{studio_server.url}/api/projects/{project_id}/next", headers={"Authorization": f"Token {studio_server.api_key}"}, timeout=120)
    assert upcoming.status_code == 200, upcoming.text
    assert [p["model_version"] for p in upcoming.json()["predictions"]] == [second]
    assert [p["model_version"] for p in open_task(studio_server, task_id, project_id)["predictions"]] == [first.card.model_id]

    # "Start training" in Label Studio reaches the backend as a START_TRAINING webhook and retrains at once.
    ls.ml.train(registered.id)
    status = wait_for(lambda: (s := backend.health())["retraining"]["trainings"] == 2 and s, 300, "the retraining Label Studio started")
    assert status["model_version"].startswith("live-0002-") and status["retraining"]["failures"] == 0
    assert "Traceback" not in backend.log_tail(400)


def test_backend_stopped_mid_session_leaves_labelling_working(
    studio_server: StudioServer, annotate_backend: Callable[..., BackendServer], tiny_model: tuple[Path, Path]
) -> None:
    labels_dir, model_dir = tiny_model
    backend = start_backend(annotate_backend, studio_server, labels_dir, model_dir)
    project = "backend goes down"
    with studio.connect(studio_server.url, studio_server.api_key) as client:
        project_id = studio.push(client, sentences(5, "down"), project=project).project_id
    connect_cli(studio_server, backend, project)
    env = {"LABEL_STUDIO_URL": studio_server.url, "LABEL_STUDIO_API_KEY": studio_server.api_key}
    up = run_cli(["studio", "status", "--project", project], env)
    assert f"  {backend.url}: up (Connected), model version " in up.stdout

    backend.stop()
    task_id = import_task(studio_server, project_id, "The vendor launched a paid subscription for hospitals.", "down-imported")
    assert open_task(studio_server, task_id, project_id)["predictions"] == []
    annotation = sdk(studio_server).annotations.create(id=task_id, result=choices(["commercialization"]))
    assert annotation.id
    down = run_cli(["studio", "status", "--project", project, "--json"], env)
    assert down.exit_code == 0, down.output
    (state,) = json.loads(down.stdout)["backends"]
    assert (state["up"], state["state"]) == (False, "Disconnected")
    table = run_cli(["studio", "status", "--project", project], env)
    assert f"  {backend.url}: down (Disconnected)" in table.stdout


def test_auth_and_malformed_bodies_on_the_live_backend(
    studio_server: StudioServer, annotate_backend: Callable[..., BackendServer], tiny_model: tuple[Path, Path]
) -> None:
    labels_dir, model_dir = tiny_model
    backend = start_backend(annotate_backend, studio_server, labels_dir, model_dir, "--max-body-mb", "0.05")
    for auth in (None, (backend.user, "wrong-password-123"), ("someone-else", backend.password)):
        answer = httpx.post(f"{backend.url}/predict", json={"tasks": []}, auth=auth, timeout=10)
        assert answer.status_code == 401 and list(answer.json()) == ["error"]
    bad = [
        (b"{", 400),
        (b'"a string"', 422),
        (b'{"tasks": {"id": 1}}', 422),
        (json.dumps({"tasks": [{"data": {"text": "x" * 60_000}}]}).encode(), 413),
    ]
    for body, status in bad:
        answer = httpx.post(f"{backend.url}/predict", content=body, auth=backend.auth, headers={"content-type": "application/json"}, timeout=10)
        assert answer.status_code == status, answer.text
        assert list(answer.json()) == ["error"] and "\n" not in answer.json()["error"]
    assert httpx.post(f"{backend.url}/webhook", content=b"[]", auth=backend.auth, timeout=10).status_code == 422
    # Label Studio refuses a registration with the wrong password: it asks /health first and gets 401.
    env = {"LABEL_STUDIO_URL": studio_server.url, "LABEL_STUDIO_API_KEY": studio_server.api_key, "ANNOTATE_BACKEND_PASSWORD": "not-the-password"}
    refused = run_cli(["studio", "connect", "--project", "wrong password", "--backend", backend.url], env)
    assert refused.exit_code == 1 and refused.stderr.startswith(f"Error: Label Studio at {studio_server.url} refused registering the ML backend")
    assert "authentication parameters were either not provided or are incorrect" in refused.stderr
    assert "not-the-password" not in refused.output
    log = backend.log_tail(400)
    assert "Traceback" not in log and backend.password not in log and studio_server.api_key not in log

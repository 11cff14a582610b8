"""The ML backend app (annotate.serve) through Starlette's test client: protocol, errors, auth, retraining bookkeeping.

The live round trip with Label Studio is in tests/integration/test_backend_live.py.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from annotate import serve, studio
from annotate.classify import Model, load_model
from annotate.cli import cli
from annotate.errors import ModelError
from annotate.labels import LABELS

AUTH = ("label-studio", "a-long-enough-password")
SENTENCES = [
    "The start-up raised 40 million dollars in a Series B round led by venture investors.",
    "Regulators said the triage tool needs approval before hospitals may deploy it.",
    "Doctors warned that the chatbot hallucinated dosages and endangered patients.",
]


@pytest.fixture(scope="module")
def model() -> Model:
    return load_model(None)


def make_client(model: Model, tmp_path: Path, **kwargs: Any) -> TestClient:
    options: dict[str, Any] = {"auth": AUTH, "labels_dir": tmp_path / "labels", "versions_dir": tmp_path / "versions", **kwargs}
    basic = "Basic " + base64.b64encode(":".join(AUTH).encode()).decode()
    return TestClient(serve.create_app(model, **options), headers={"Authorization": basic}, raise_server_exceptions=False)


@pytest.fixture
def client(model: Model, tmp_path: Path) -> Iterator[TestClient]:
    with make_client(model, tmp_path) as test_client:
        yield test_client


def tasks(*texts: Any) -> list[dict[str, Any]]:
    return [{"id": number, "data": {"text": text}} for number, text in enumerate(texts, start=1)]


def assert_error(answer: Any, status: int) -> str:
    """A refusal is exactly one JSON ``error`` line."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert list(body) == ["error"] and "\n" not in body["error"] and "Traceback" not in answer.text
    return str(body["error"])


# --- the protocol -------------------------------------------------------------------------


def test_predict_gives_multi_label_choices_scores_and_version(client: TestClient, model: Model) -> None:
    answer = client.post("/predict", json={"tasks": tasks(*SENTENCES), "project": "3.1700000000", "label_config": studio.label_config()})
    assert answer.status_code == 200
    body = answer.json()
    version = model.card.model_id
    assert body["model_version"] == version and len(body["results"]) == len(SENTENCES)
    probabilities = model.predict_proba(SENTENCES)
    for prediction, row in zip(body["results"], probabilities, strict=True):
        chosen = [label for label, p, t in zip(LABELS, row, model.thresholds, strict=True) if p >= t]
        assert prediction["model_version"] == version
        assert prediction["scores"] == pytest.approx(dict(zip(LABELS, row.tolist(), strict=True)), abs=1e-4)
        assert prediction["score"] == pytest.approx(float(np.min(np.maximum(row, 1 - row))), abs=1e-4)
        expected = [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": chosen}}] if chosen else []
        assert prediction["result"] == expected
    assert body["results"][0]["result"][0]["value"]["choices"] == ["financing"]


def test_tasks_without_a_sentence_get_no_prediction_and_a_logged_reason(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    batch = [*tasks(SENTENCES[0], None, "   ", 42), {"id": 9, "data": {"title": "no text here"}}]
    with caplog.at_level(logging.WARNING, logger="annotate.serve"):
        answer = client.post("/predict", json={"tasks": batch})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert results[0]["result"] and results[1:] == [[], [], [], []]
    reasons = [r.getMessage() for r in caplog.records]
    assert "task 2: no prediction, no 'text' in its data" in reasons
    assert "task 3: no prediction, its 'text' is empty" in reasons
    assert "task 4: no prediction, its 'text' is a int, not a sentence" in reasons
    assert "task 9: no prediction, no 'text' in its data" in reasons


def test_predictions_run_one_at_a_time(model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    running, most = [0], [0]
    count = threading.Lock()
    real = serve.predictions

    def counted(model: Model, tasks: list[Any]) -> list[Any]:
        with count:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with count:
            running[0] -= 1
        return real(model, tasks)

    monkeypatch.setattr(serve, "predictions", counted)
    with make_client(model, tmp_path) as client:
        answers: list[int] = []

        def one_client() -> None:
            answers.append(client.post("/predict", json={"tasks": tasks("Regulators blocked the AI tool.")}).status_code)

        clients = [threading.Thread(target=one_client) for _ in range(8)]
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join()
    assert answers == [200] * 8
    assert most[0] == 1


def test_setup_returns_the_model_version_and_checks_the_config(client: TestClient, model: Model) -> None:
    answer = client.post("/setup", json={"project": "3.1700000000", "schema": studio.label_config(), "access_token": "x" * 40})
    assert answer.status_code == 200 and answer.json() == {"model_version": model.card.model_id}
    other = '<View><Text name="text" value="$text"/><Choices name="sentiment" toName="text"><Choice value="good"/></Choices></View>'
    fewer = studio.label_config().replace('<Choice value="financing"', '<Choice value="funding"')
    for config in (other, fewer, "<View><unclosed"):
        assert "labelling config" in assert_error(client.post("/setup", json={"project": "3.1", "schema": config}), 422)
        assert "labelling config" in assert_error(client.post("/predict", json={"tasks": tasks("x"), "label_config": config}), 422)


def test_health_reports_the_model_and_why_retraining_is_off(client: TestClient, model: Model) -> None:
    body = client.get("/health").json()
    assert body["status"] == "UP" and body["model_version"] == model.card.model_id
    assert body["retraining"]["enabled"] is False
    assert body["retraining"]["reason"] == "LABEL_STUDIO_URL is not set, so annotations cannot be read"


def test_webhook_counts_annotations_and_ignores_other_events(model: Model, tmp_path: Path) -> None:
    app_options = {"studio_url": "http://127.0.0.1:9", "studio_key": "k" * 40, "retrain_after": 100}
    with make_client(model, tmp_path, **app_options) as client:
        created = {"action": "ANNOTATION_CREATED", "project": {"id": 7}, "annotation": {"id": 1}}
        assert client.post("/webhook", json=created).json() == {"status": "ok", "pending_annotations": 1}
        many = {"action": "ANNOTATIONS_CREATED", "project": {"id": 7}, "annotation": [{"id": 2}, {"id": 3, "was_cancelled": True}, {"id": 4}]}
        assert client.post("/webhook", json=many).json()["pending_annotations"] == 3
        assert client.post("/webhook", json={"action": "TASKS_CREATED", "project": {"id": 7}}).json()["status"] == "ignored"
        assert client.get("/health").json()["retraining"]["pending_annotations"] == 3
        assert "project.id" in assert_error(client.post("/webhook", json={"action": "ANNOTATION_CREATED"}), 422)


# --- errors, limits and auth --------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "the request body is not JSON"),
        (b"[1, 2]", 422, "the request body must be a JSON object, not list"),
        (b'{"tasks": "all of them"}', 422, "tasks: Input should be a valid list"),
        (b'{"tasks": [{"id": 1}]}', 422, "tasks.0.data: Field required"),
        (b'{"tasks": [{"id": "one", "data": {}}]}', 422, "tasks.0.id: Input should be a valid integer"),
    ],
)
def test_malformed_bodies_get_a_one_line_4xx(client: TestClient, body: bytes, status: int, message: str) -> None:
    answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
    assert assert_error(answer, status).startswith(message)


def test_unknown_routes_and_methods_get_json_errors(client: TestClient) -> None:
    assert assert_error(client.get("/nowhere"), 404) == "Not Found"
    assert assert_error(client.get("/predict"), 405) == "Method Not Allowed"
    assert_error(client.post("/webhook", json={"project": {"id": 1}}), 422)


def test_bodies_over_the_limit_are_refused(model: Model, tmp_path: Path) -> None:
    with make_client(model, tmp_path, max_body=1000) as client:
        big = json.dumps({"tasks": tasks("word " * 400)}).encode()
        assert "at most 1000 bytes" in assert_error(client.post("/predict", content=big), 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams in
            yield b'{"tasks": ['
            for _ in range(50):
                yield b'{"data": {"text": "a sentence of some length"}},'
            yield b"]}"

        assert "at most 1000 bytes" in assert_error(client.post("/predict", content=chunks()), 413)
        small = client.post("/predict", json={"tasks": tasks("A small request.")})
        assert small.status_code == 200


@pytest.mark.parametrize(
    "header",
    [None, "Basic " + base64.b64encode(b"label-studio:wrong-password!").decode(), "Basic !!notbase64", "Bearer " + AUTH[1]],
)
def test_missing_or_wrong_basic_auth_gets_401(model: Model, tmp_path: Path, header: str | None) -> None:
    with TestClient(serve.create_app(model, auth=AUTH, labels_dir=tmp_path, versions_dir=tmp_path)) as client:
        for method, path in (("GET", "/health"), ("POST", "/predict"), ("POST", "/setup"), ("POST", "/webhook")):
            answer = client.request(method, path, json={"tasks": []}, headers={"Authorization": header} if header else {})
            assert answer.headers["www-authenticate"] == 'Basic realm="annotate"'
            assert "basic auth" in assert_error(answer, 401)
        assert client.get("/health", auth=AUTH).status_code == 200


def test_no_auth_app_answers_without_credentials(model: Model, tmp_path: Path) -> None:
    with TestClient(serve.create_app(model, auth=None, labels_dir=tmp_path, versions_dir=tmp_path)) as client:
        assert client.get("/health").status_code == 200


# --- retraining bookkeeping ---------------------------------------------------------------


def wait_for(client: TestClient, condition: Any, timeout: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status: dict[str, Any] = client.get("/health").json()["retraining"]
        if condition(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_a_burst_of_annotations_trains_once_and_a_failure_keeps_the_model(model: Model, tmp_path: Path) -> None:
    # Nothing listens on port 9: the training process fails to pull, as with Label Studio down.
    options = {"studio_url": "http://127.0.0.1:9", "studio_key": "k" * 40, "retrain_after": 3, "debounce": 0.5}
    with make_client(model, tmp_path, **options) as client:
        for number in range(7):
            client.post("/webhook", json={"action": "ANNOTATION_CREATED", "project": {"id": 5}, "annotation": {"id": number}})
        status = wait_for(client, lambda s: s["failures"] or s["trainings"])
        time.sleep(1.5)  # past the debounce: a second training would have started by now
        status = wait_for(client, lambda s: not s["running"])
        assert (status["trainings"], status["failures"], status["pending_annotations"]) == (0, 1, 0)
        assert status["last_error"].startswith("cannot reach Label Studio at http://127.0.0.1:9")
        assert "k" * 40 not in json.dumps(status)
        assert client.get("/health").json()["model_version"] == model.card.model_id
        assert client.post("/predict", json={"tasks": tasks(SENTENCES[0])}).json()["model_version"] == model.card.model_id
        # "Start training" in Label Studio retries at once, whatever the count.
        client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 5}})
        status = wait_for(client, lambda s: s["failures"] == 2 and not s["running"])
        assert status["failures"] == 2
    assert not (tmp_path / "versions" / serve.CURRENT_FILE).exists()


def test_the_served_version_is_the_one_current_names(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    assert serve.current_model_dir(tmp_path / "start", versions) == tmp_path / "start"
    assert serve.next_version_dir(versions).name == "live-0001"
    (versions / "live-0007").mkdir(parents=True)
    assert serve.next_version_dir(versions).name == "live-0008"
    (versions / serve.CURRENT_FILE).write_text("live-0007\n")
    assert serve.current_model_dir(tmp_path / "start", versions) == versions / "live-0007"
    (versions / serve.CURRENT_FILE).write_text("../elsewhere\n")
    with pytest.raises(ModelError, match="not a model version"):
        serve.current_model_dir(tmp_path / "start", versions)


# --- the command line ---------------------------------------------------------------------


def run(args: list[str], env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, args, env={"ANNOTATE_BACKEND_PASSWORD": None, "LABEL_STUDIO_API_KEY": None, **(env or {})})  # type: ignore[dict-item]


@pytest.mark.timeout(120)  # a regression would start the server and block
def test_serve_refuses_no_auth_off_loopback_and_a_missing_or_short_password() -> None:
    result = run(["serve", "--no-auth", "--host", "0.0.0.0"])
    assert (result.exit_code, result.stderr) == (2, "Error: --no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), not 0.0.0.0\n")
    result = run(["serve"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ANNOTATE_BACKEND_PASSWORD is not set; export the backend's password")
    result = run(["serve"], env={"ANNOTATE_BACKEND_PASSWORD": "short"})
    assert (result.exit_code, result.stderr) == (2, "Error: ANNOTATE_BACKEND_PASSWORD must have at least 12 characters\n")
    result = run(["studio", "connect", "--project", "p", "--backend", "http://127.0.0.1:9090", "--url", "http://127.0.0.1:9", "--api-key", "k" * 40])
    assert result.exit_code == 2 and "ANNOTATE_BACKEND_PASSWORD is not set" in result.stderr


def test_serve_refuses_a_model_it_cannot_load(tmp_path: Path) -> None:
    result = run(["serve", "--no-auth", "--model", str(tmp_path / "nothing"), "--versions", str(tmp_path / "v")])
    assert result.exit_code == 1
    assert result.stderr == f"Error: {tmp_path / 'nothing'}: no model card (model_card.json); train one with 'annotate train -o {tmp_path / 'nothing'}'\n"

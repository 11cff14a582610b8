"""``annotate.studio`` against a real Label Studio: every claim of issues 3, 6 and 13, measured.

Every test that uses ``studio_server`` runs twice: on Label Studio with SQLite
and with PostgreSQL (see ``conftest.py``). Each test works in its own project,
so they do not depend on one another. Tests that stop the server or put a
proxy in front of it leave it running. Nothing here waits on a timer: a
fault happens when the proxy sees the request it is meant for.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from annotate import studio
from annotate.classify import load_model
from annotate.errors import InputError, StudioAuthError, StudioConnectionError, StudioError
from annotate.ingest import read_sentences
from annotate.labels import LABEL_HINTS, LABEL_NAMES, LABELS
from annotate.schemas import Sentence

from .conftest import ACCESS_TOKEN_SECONDS, TOKEN_LEEWAY_SECONDS, closed_port, open_client, sdk

if TYPE_CHECKING:
    from .conftest import BackendServer, Chromium, FaultProxy, StudioServer

FAST = {"timeout": 20.0, "retries": 3, "backoff": 0.05}


# --- helpers -----------------------------------------------------------------------------


TOPICS = [
    ("financing", "The start-up raised {n} million dollars in a Series B round led by venture investors."),
    ("regulatory_barrier", "Regulators said the triage tool {n} needs approval before hospitals may deploy it."),
    ("safety_risk", "Doctors warned that model {n} hallucinated dosages and endangered patients."),
    ("commercialization", "The vendor signed {n} hospital customers and launched a paid subscription."),
    ("", "The weather in the capital was mild on day {n} of the conference."),
]


def make_sentences(n: int, *, prefix: str = "s", start: int = 0) -> list[Sentence]:
    """``n`` sentences in articles of 5, with title and prev/next context like ``segment`` gives."""
    sentences = []
    for i in range(start, start + n):
        article, index = divmod(i, 5)
        _, template = TOPICS[i % len(TOPICS)]
        sentences.append(
            Sentence(
                article_id=f"{prefix}-a{article}",
                sentence_id=f"{prefix}-{i:06d}",
                paragraph=1 + index // 2,
                index=index,
                text=template.format(n=i),
                lang="en",
                title=f"Article {article} about AI in health care",
                source="tests",
                prev=TOPICS[(i - 1) % len(TOPICS)][1].format(n=i - 1) if index else "",
                next=TOPICS[(i + 1) % len(TOPICS)][1].format(n=i + 1) if index < 4 else "",
            )
        )
    return sentences


def task_ids_by_sentence(server: StudioServer, project_id: int) -> dict[str, list[int]]:
    """Every task of the project, grouped by sentence_id: a duplicate shows as a list of 2."""
    found: dict[str, list[int]] = {}
    for task in sdk(server).tasks.list(project=project_id, fields="all", include="id,data", page_size=5000):
        found.setdefault(str(task.data.get("sentence_id")), []).append(int(task.id))
    return found


def assert_exact(server: StudioServer, project_id: int, sentences: Sequence[Sentence]) -> None:
    found = task_ids_by_sentence(server, project_id)
    duplicates = {k: v for k, v in found.items() if len(v) > 1}
    assert not duplicates, f"{len(duplicates)} sentences have several tasks"
    assert set(found) == {s.sentence_id for s in sentences}
    assert sdk(server).projects.get(project_id).task_number == len(sentences)


def predictions_by_task(server: StudioServer, project_id: int) -> dict[str, list[dict[str, Any]]]:
    client = sdk(server)
    found: dict[str, list[dict[str, Any]]] = {}
    for task in client.tasks.list(project=project_id, fields="all", include="id,data", page_size=5000):
        found[str(task.data["sentence_id"])] = [p.model_dump() for p in client.predictions.list(task=task.id)]
    return found


def model_predictor() -> tuple[studio.Predictor, str]:
    """The default model's predictor and model version, through ``annotate.classify``."""
    from annotate import classify

    model = classify.load_model(None)
    return model.predict_sentences, model.card.model_id


def choices(*labels: str) -> list[dict[str, Any]]:
    return [{"from_name": "labels", "to_name": "text", "type": "choices", "value": {"choices": list(labels)}}]


def connect(server: StudioServer, **kwargs: Any) -> studio.StudioClient:
    return open_client(server.url, server.api_key, **{**FAST, **kwargs})


# --- push ------------------------------------------------------------------------------------


def test_push_creates_tasks_once_and_only_new_ones(studio_server: StudioServer) -> None:
    client = connect(studio_server)
    sentences = make_sentences(1800, prefix="idem")
    ticks: list[int] = []

    first = studio.push(client, sentences[:1200], project="idempotent push", batch_size=500, progress=ticks.append)
    assert (first.created_project, first.tasks_before, first.tasks_created, first.tasks_skipped_existing) == (True, 0, 1200, 0)
    assert sum(ticks) == 1200
    assert_exact(studio_server, first.project_id, sentences[:1200])

    again = studio.push(client, sentences[:1200], project="idempotent push", batch_size=500)
    assert (again.created_project, again.tasks_before, again.tasks_created, again.tasks_skipped_existing) == (False, 1200, 0, 1200)
    assert_exact(studio_server, first.project_id, sentences[:1200])

    overlap = studio.push(client, sentences[600:] + sentences[600:700], project="idempotent push", batch_size=500)
    assert (overlap.tasks_before, overlap.tasks_created, overlap.tasks_skipped_existing) == (1200, 600, 600)
    assert overlap.project_id == first.project_id
    assert_exact(studio_server, first.project_id, sentences)


def test_push_with_model_predictions_that_annotators_see(studio_server: StudioServer) -> None:
    predictor, version = model_predictor()
    client = connect(studio_server)
    sentences = make_sentences(30, prefix="pred")

    # Pushed first without a model, and annotated: the model must add to these, not replace.
    plain = studio.push(client, sentences[:20], project="with predictions")
    assert plain.predictions_created == 0 and plain.model_version is None
    first_task = task_ids_by_sentence(studio_server, plain.project_id)[sentences[0].sentence_id][0]
    sdk(studio_server).annotations.create(id=first_task, result=choices("financing"))

    report = studio.push(client, sentences, project="with predictions", predictor=predictor, model_version=version)
    assert (report.tasks_created, report.tasks_skipped_existing, report.predictions_created) == (10, 20, 30)
    assert report.model_version == version
    project = sdk(studio_server).projects.get(report.project_id)
    assert project.model_version == version, "annotators only see predictions of the project's model version"
    assert project.show_collab_predictions is True
    predictions = predictions_by_task(studio_server, report.project_id)
    assert set(predictions) == {s.sentence_id for s in sentences}
    texts = {s.sentence_id: s.text for s in sentences}
    expected = dict(zip(texts, predictor(sentences), strict=True))
    for sentence_id, found in predictions.items():
        assert [p["model_version"] for p in found] == [version]
        chosen = found[0]["result"][0]["value"]["choices"] if found[0]["result"] else []
        assert chosen == [label for label in LABELS if label in expected[sentence_id][0]]
        assert 0.5 <= found[0]["score"] <= 1.0
    assert len(sdk(studio_server).annotations.list(id=first_task)) == 1

    # Same model again: nothing to do.
    again = studio.push(client, sentences, project="with predictions", predictor=predictor, model_version=version)
    assert (again.tasks_created, again.predictions_created) == (0, 0)
    # A new model version is added beside the old one and becomes the active one.
    newer = studio.push(client, sentences, project="with predictions", predictor=predictor, model_version=version + "-b")
    assert newer.predictions_created == 30
    assert sdk(studio_server).projects.get(report.project_id).model_version == version + "-b"
    assert studio.status(client, project="with predictions").predictions == {version: 30, version + "-b": 30}
    assert_exact(studio_server, report.project_id, sentences)


def test_prediction_with_unknown_label_is_refused_before_sending(studio_server: StudioServer) -> None:
    client = connect(studio_server)
    sentences = make_sentences(5, prefix="bad")

    def predictor(batch: Sequence[Sentence]) -> list[tuple[list[str], dict[str, float]]]:
        return [(["financing", "astrology"], {"financing": 0.9, "astrology": 0.8}) for _ in batch]

    with pytest.raises(InputError, match=r"sentence bad-000000: prediction has labels not in the labelling config: astrology"):
        studio.push(client, sentences, project="bad predictions", predictor=predictor, model_version="m-bad")
    assert studio.find_project(client, "bad predictions") is None, "nothing may reach the server"


def test_config_mismatch_stops_unless_update_config(studio_server: StudioServer) -> None:
    client = connect(studio_server)
    old_config = (
        studio.read_label_config()
        .replace('showInline="false"', 'showInline="true"')
        .replace(
            '  <TextArea name="note" toName="text" placeholder="Note for the reviewers (optional)" rows="2" maxSubmissions="1" editable="true"/>\n',
            "",
        )
    )
    project = sdk(studio_server).projects.create(title="old config", label_config=old_config)
    sentences = make_sentences(4, prefix="cfg")
    sdk(studio_server).projects.import_tasks(project.id, request=studio.build_tasks(sentences[:2]))
    task = task_ids_by_sentence(studio_server, project.id)[sentences[0].sentence_id][0]
    sdk(studio_server).annotations.create(id=task, result=choices("safety_risk"))

    with pytest.raises(StudioError) as error:
        studio.push(client, sentences, project="old config")
    assert str(error.value) == (
        "project old config has a different labelling config than schemas/label_config.xml; rerun with --update-config"
    )
    assert sdk(studio_server).projects.get(project.id).task_number == 2, "nothing pushed after the refusal"

    report = studio.push(client, sentences, project="old config", update_config=True)
    assert report.config_updated and (report.tasks_created, report.tasks_skipped_existing) == (2, 2)
    assert studio.same_config(sdk(studio_server).projects.get(project.id).label_config or "", studio.read_label_config())
    annotations = sdk(studio_server).annotations.list(id=task)
    assert [a.result[0]["value"]["choices"] for a in annotations] == [["safety_risk"]], "the annotation survives"
    assert studio.push(client, sentences, project="old config").config_updated is False


def test_several_projects_with_one_name_is_an_error(studio_server: StudioServer) -> None:
    for _ in range(2):
        sdk(studio_server).projects.create(title="twin project", label_config=studio.read_label_config())
    with pytest.raises(
        StudioError,
        match=r"^2 projects in Label Studio at http://127\.0\.0\.1:\d+ are titled 'twin project' \(ids \d+, \d+\); rename all but one$",
    ):
        studio.push(connect(studio_server), make_sentences(2, prefix="twin"), project="twin project")


def test_batch_rejected_by_server_names_its_sentences(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    """A batch Label Studio itself refuses (HTTP 400 with ``validation_errors``): named, not retried, nothing lost."""
    client = open_client(fault_proxy.url, studio_server.api_key, **FAST)
    sentences = make_sentences(30, prefix="rej")
    studio.push(client, sentences[:10], project="rejected batch", batch_size=10)  # the first batch is in

    def without_text(body: bytes) -> bytes:
        # A task without the field the labelling config shows is what Label Studio's own validation refuses.
        tasks = json.loads(body)
        del tasks[3]["data"]["text"]
        return json.dumps(tasks).encode()

    fault_proxy.add("POST", r"/api/projects/\d+/import$", "rewrite", rewrite=without_text)
    with pytest.raises(StudioError) as error:
        studio.push(client, sentences, project="rejected batch", batch_size=10)
    message = str(error.value)
    assert message.startswith(
        f"Label Studio at {fault_proxy.url} rejected the batch of sentences rej-000010 … rej-000019 (HTTP 400: {{\"non_field_errors\":"
    ), message
    assert 'Error at item 3: \\"text\\" key is expected in task data' in message, "the server's own reason, from validation_errors"
    assert error.value.status == 400
    assert fault_proxy.count("POST", r"/import$") == 2, "a rejected batch is not retried"
    assert_exact(studio_server, studio.find_project(client, "rejected batch").id, sentences[:10])


def test_sentence_with_a_nul_character_is_pushed(studio_server: StudioServer) -> None:
    """PostgreSQL cannot store U+0000 in JSON (Label Studio answers HTTP 500); ingest keeps it, push replaces it."""
    client = connect(studio_server)
    base = make_sentences(3, prefix="nul")
    odd = base[1].model_copy(update={"text": "Odd \x00 byte in the filing.", "next": "A\x00B"})
    report = studio.push(client, [base[0], odd, base[2]], project="nul character")
    assert report.tasks_created == 3
    tasks = {task.data["sentence_id"]: task.data for task in sdk(studio_server).tasks.list(project=report.project_id, fields="all")}
    assert tasks[odd.sentence_id]["text"] == "Odd \ufffd byte in the filing." and tasks[odd.sentence_id]["next"] == "A\ufffdB"
    assert studio.push(client, [base[0], odd, base[2]], project="nul character").tasks_created == 0, "matched on the sentence id"


# --- annotators, pull, status -------------------------------------------------------------


def test_two_annotators_a_skip_then_pull_and_status(studio_server: StudioServer, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = connect(studio_server)
    sentences = make_sentences(7, prefix="ann")
    report = studio.push(client, sentences, project="annotated project")
    ids = {sid: tasks[0] for sid, tasks in task_ids_by_sentence(studio_server, report.project_id).items()}
    task = [ids[s.sentence_id] for s in sentences]
    bob = studio_server.create_annotator("bob")
    carol = studio_server.create_annotator("carol")
    admin, as_bob, as_carol = sdk(studio_server), sdk(studio_server, bob.api_key), sdk(studio_server, carol.api_key)

    # t0, t1: agree; t2, t3: disagree (one vs one: a tie); t4: bob skips; t5: admin alone; t6: nobody.
    admin.annotations.create(id=task[0], result=choices("financing"))
    as_bob.annotations.create(id=task[0], result=choices("financing"))
    admin.annotations.create(id=task[1], result=choices("regulatory_barrier", "commercialization"))
    as_bob.annotations.create(id=task[1], result=choices("commercialization", "regulatory_barrier"))
    admin.annotations.create(id=task[2], result=choices("safety_risk"))
    as_bob.annotations.create(id=task[2], result=choices("commercialization"))
    admin.annotations.create(id=task[3], result=[])
    as_bob.annotations.create(id=task[3], result=choices("financing"))
    as_bob.annotations.create(id=task[4], result=[], was_cancelled=True)
    admin.annotations.create(id=task[5], result=choices("commercialization"))

    labels_dir = tmp_path / "labels"
    first = studio.pull(client, project="annotated project", labels_dir=labels_dir)
    label_set = first.label_set
    assert (label_set.rows, label_set.ties, label_set.skipped_cancelled, label_set.without_annotations) == (5, 2, 1, 2)
    assert (label_set.version, label_set.new, label_set.updated, label_set.removed, label_set.changed) == (1, 5, 0, 0, True)
    assert (first.tasks, first.annotations, first.snapshot_written, first.fewer_annotations) == (7, 10, True, False)
    snapshot = Path(first.snapshot)
    assert snapshot.parent == labels_dir / "raw" and snapshot.name.startswith("studio-")
    assert len(json.loads(snapshot.read_bytes())) == 7
    rows = {json.loads(line)["sentence_id"]: json.loads(line) for line in Path(label_set.file or "").read_text().splitlines()}
    assert rows[sentences[1].sentence_id]["regulatory_barrier"] == rows[sentences[1].sentence_id]["commercialization"] == 1
    assert rows[sentences[2].sentence_id]["decision"] == "tie"
    assert {a["annotator"] for a in rows[sentences[0].sentence_id]["annotations"]} == {"user:1", f"user:{bob.user_id}"}

    # Pulling again changes nothing.
    second = studio.pull(client, project="annotated project", labels_dir=labels_dir)
    assert (second.label_set.changed, second.label_set.new, second.label_set.updated, second.label_set.removed) == (False, 0, 0, 0)
    assert second.label_set.version == 1 and second.snapshot_written is False

    # A third opinion breaks a tie (updated) and a first annotation arrives (new).
    as_carol.annotations.create(id=task[2], result=choices("safety_risk"))
    as_carol.annotations.create(id=task[6], result=choices("regulatory_barrier"))
    third = studio.pull(client, project="annotated project", labels_dir=labels_dir)
    assert (third.label_set.version, third.label_set.new, third.label_set.updated, third.label_set.removed) == (2, 1, 1, 0)
    assert (third.label_set.rows, third.label_set.ties) == (6, 1)
    assert third.previous_snapshot == first.snapshot and third.previous_annotations == 10 and third.annotations == 12

    state = studio.status(client, project="annotated project")
    assert (state.tasks, state.annotated, state.skipped, state.annotations) == (7, 6, 1, 11)
    assert state.per_annotator == {studio_server.email: 5, bob.email: 4, carol.email: 2}
    assert state.per_label == {"regulatory_barrier": 3, "financing": 3, "safety_risk": 2, "commercialization": 4}
    assert state.predictions == {}

    # An annotation deleted in Label Studio: said loudly, both snapshots kept.
    admin.annotations.delete(id=admin.annotations.list(id=task[5])[0].id)
    with caplog.at_level(logging.WARNING, logger="annotate.studio"):
        fourth = studio.pull(client, project="annotated project", labels_dir=labels_dir)
    assert fourth.fewer_annotations and fourth.annotations_lost == 1 and fourth.previous_annotations == 12
    assert fourth.warning and "11 annotations against 12 at the last pull" in fourth.warning
    assert fourth.warning in caplog.text
    assert Path(fourth.previous_snapshot or "").exists() and Path(fourth.snapshot).exists()
    assert len(list((labels_dir / "raw").glob("studio-*.json"))) == 3
    assert fourth.label_set.removed == 1 and fourth.label_set.version == 3
    assert (labels_dir / "studio-v2.jsonl").exists(), "older label sets stay"


# --- keys and connections ------------------------------------------------------------------


def test_personal_access_token_works(studio_server: StudioServer) -> None:
    pat = studio_server.personal_access_token()
    assert pat.count(".") == 2, "a JWT"
    client = open_client(studio_server.url, pat, **FAST)
    assert client.user_email == studio_server.email
    report = studio.push(client, make_sentences(12, prefix="pat"), project="pushed with a PAT", batch_size=5)
    assert report.tasks_created == 12
    assert studio.status(client, project="pushed with a PAT").tasks == 12


@pytest.mark.parametrize(
    "key",
    [
        "0" * 40,
        # a well-formed, unexpired JWT refresh token that this server never signed
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCIsImV4cCI6ODEwMjgwNTExOSwiaWF0IjoxNzk1NjA1MTE5LCJqdGkiOiIwMDAwIiwidXNlcl9pZCI6IjEifQ.c2lnbmF0dXJlLW5vdC12YWxpZA",
    ],
    ids=["legacy", "pat"],
)
def test_wrong_key_is_rejected(studio_server: StudioServer, key: str) -> None:
    with pytest.raises(StudioAuthError) as error:
        studio.connect(studio_server.url, key, **FAST)
    assert str(error.value) == f"Label Studio at {studio_server.url} rejected the API key (HTTP 401)"
    assert key not in str(error.value)


def test_unreachable_url_names_the_url() -> None:
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(StudioConnectionError) as error:
            studio.connect(url, "0" * 40, timeout=2.0, retries=2, backoff=0.1)
    assert str(error.value) == f"cannot reach Label Studio at {url} (connection refused); gave up after 3 attempts"


def test_personal_access_token_is_refreshed_after_its_access_token_expires(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    """The SDK trades the PAT for an access token; once the server refuses that token, the client gets a new one and carries on."""
    pat = studio_server.personal_access_token()
    client = open_client(fault_proxy.url, pat, **FAST)
    sentences = make_sentences(8, prefix="refresh")
    studio.push(client, sentences[:4], project="token refresh", batch_size=2)
    refreshes = fault_proxy.count("POST", r"^/api/token/refresh/?$")
    assert refreshes >= 1

    # An access token made now expires no earlier than the client's: wait until the server refuses it.
    with httpx.Client(base_url=studio_server.url, timeout=30.0) as http:
        access = http.post("/api/token/refresh/", json={"refresh": pat}).json()["access"]
        assert http.get("/api/current-user/whoami", headers={"Authorization": f"Bearer {access}"}).status_code == 200
        deadline = time.monotonic() + ACCESS_TOKEN_SECONDS + TOKEN_LEEWAY_SECONDS + 30
        while http.get("/api/current-user/whoami", headers={"Authorization": f"Bearer {access}"}).status_code != 401:
            assert time.monotonic() < deadline, "the server never refused the expired access token"
            time.sleep(0.2)

    report = studio.push(client, sentences, project="token refresh", batch_size=2)
    assert (report.tasks_created, report.tasks_skipped_existing) == (4, 4)
    assert fault_proxy.count("POST", r"^/api/token/refresh/?$") > refreshes, "the client asked for a new access token"
    assert_exact(studio_server, report.project_id, sentences)


# --- a server that misbehaves ------------------------------------------------------------------


def test_push_interrupted_between_batches_then_completed(studio_server: StudioServer) -> None:
    client = connect(studio_server, retries=2, backoff=0.2)
    sentences = make_sentences(3000, prefix="cut")
    done: list[int] = []

    def crash_after_three_batches(n: int) -> None:
        done.append(n)
        if len(done) == 4:  # the first call counts the skipped sentences (0 here)
            studio_server.kill()

    try:
        with pytest.raises(
            StudioConnectionError, match=r"^cannot reach Label Studio at .* \(connection refused\); gave up after 3 attempts$"
        ):
            studio.push(client, sentences, project="interrupted push", batch_size=500, progress=crash_after_three_batches)
    finally:
        studio_server.restart()
    assert sum(done) == 1500
    client = connect(studio_server)
    report = studio.push(client, sentences, project="interrupted push", batch_size=500)
    assert (report.tasks_before, report.tasks_created, report.tasks_skipped_existing) == (1500, 1500, 1500)
    assert_exact(studio_server, report.project_id, sentences)


def test_server_killed_mid_request_then_completed(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    client = open_client(fault_proxy.url, studio_server.api_key, timeout=20.0, retries=1, backoff=0.2)
    sentences = make_sentences(8000, prefix="kill")
    # The first batch goes through; the server dies while it has the second.
    fault_proxy.add("POST", r"/api/projects/\d+/import$", "forward")
    fault_proxy.add("POST", r"/api/projects/\d+/import$", "hook", hook=studio_server.kill)
    try:
        with pytest.raises(StudioConnectionError):
            studio.push(client, sentences, project="killed mid request", batch_size=2000)
    finally:
        studio_server.restart()
    assert fault_proxy.count("POST", r"/import$", "hook") == 1
    client = connect(studio_server)
    project = studio.find_project(client, "killed mid request")
    assert project is not None
    before = project.task_number
    assert before in (2000, 4000), f"imports are all or nothing per batch, found {before}"
    report = studio.push(client, sentences, project="killed mid request", batch_size=2000)
    assert report.tasks_created == 8000 - before
    assert_exact(studio_server, report.project_id, sentences)


def test_http_500_on_one_batch_is_retried(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    client = open_client(fault_proxy.url, studio_server.api_key, **FAST)
    sentences = make_sentences(50, prefix="five")
    studio.push(client, sentences[:10], project="http 500", batch_size=10)
    fault_proxy.add("POST", r"/api/projects/\d+/import", "500", times=1)
    report = studio.push(client, sentences, project="http 500", batch_size=10)
    assert report.tasks_created == 40
    assert fault_proxy.count("POST", r"/import$", "500") == 1
    assert fault_proxy.count("POST", r"/import$", "forward") == 1 + 4
    assert_exact(studio_server, report.project_id, sentences)


def test_slow_and_dropped_connections_are_retried_without_duplicates(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    client = open_client(fault_proxy.url, studio_server.api_key, timeout=3.0, retries=5, backoff=0.05)
    sentences = make_sentences(60, prefix="flaky")
    studio.push(client, sentences[:10], project="flaky network", batch_size=10)
    # The server imports these batches, but the answers come after the client gave up, or never.
    fault_proxy.add("POST", r"/api/projects/\d+/import$", "hold")
    fault_proxy.add("POST", r"/api/projects/\d+/import$", "drop-after")
    fault_proxy.add("POST", r"/api/projects/\d+/import$", "drop-before")
    fault_proxy.add("GET", r"/api/tasks", "drop-before")
    fault_proxy.add("GET", r"/api/projects/", "hold")
    report = studio.push(client, sentences, project="flaky network", batch_size=10)
    assert report.tasks_created == 50
    assert {hit.action for hit in fault_proxy.hits} >= {"hold", "drop-after", "drop-before"}
    assert_exact(studio_server, report.project_id, sentences)


def test_a_server_that_keeps_failing_is_given_up_on(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    client = open_client(fault_proxy.url, studio_server.api_key, timeout=5.0, retries=3, backoff=0.25)
    sentences = make_sentences(20, prefix="down")
    studio.push(client, sentences[:10], project="always 500", batch_size=10)
    fault_proxy.add("POST", r"/api/projects/\d+/import$", "500", times=1000)
    with pytest.raises(StudioError) as error:
        studio.push(client, sentences, project="always 500", batch_size=10)
    assert str(error.value) == (
        f"Label Studio at {fault_proxy.url} failed while importing sentences down-000010 … down-000019 (HTTP 500); gave up after 4 attempts"
    )
    tries = [hit.at for hit in fault_proxy.matching("POST", r"/import$", "500")]
    assert len(tries) == 4
    # The waits between attempts double: 0.25, 0.5, 1 s (a sleep never ends early, so these are lower bounds).
    gaps = [later - earlier for earlier, later in zip(tries, tries[1:])]
    assert [gap >= 0.25 * 2**n for n, gap in enumerate(gaps)] == [True] * 3, gaps
    assert gaps[2] > gaps[0] + 0.5, gaps
    fault_proxy.clear()
    report = studio.push(client, sentences, project="always 500", batch_size=10)
    assert report.tasks_created == 10
    assert_exact(studio_server, report.project_id, sentences)


@pytest.mark.parametrize("fault", ["500", "drop-after"])
def test_project_creation_is_retried_without_a_duplicate(studio_server: StudioServer, fault_proxy: FaultProxy, fault: str) -> None:
    """A 500 before the server acts, or an answer lost after it created the project: one project either way."""
    client = open_client(fault_proxy.url, studio_server.api_key, **FAST)
    title = f"created after a {fault}"
    fault_proxy.add("POST", r"^/api/projects/?$", fault)
    report = studio.push(client, make_sentences(6, prefix=f"create-{fault}"), project=title)
    assert report.created_project and report.tasks_created == 6
    same_title = [p for p in sdk(studio_server).projects.list(title=title) if p.title == title]
    assert [p.id for p in same_title] == [report.project_id]
    # After a 500 the project is created by the retry; after a lost answer the re-read finds it and nothing is re-sent.
    assert fault_proxy.count("POST", r"^/api/projects/?$") == {"500": 2, "drop-after": 1}[fault]


def test_prediction_import_is_retried_without_duplicates(studio_server: StudioServer, fault_proxy: FaultProxy) -> None:
    """Predictions for tasks already there: a lost answer and a 500 are retried, each task gets its prediction once."""
    predictor, version = model_predictor()
    client = open_client(fault_proxy.url, studio_server.api_key, **FAST)
    sentences = make_sentences(30, prefix="predretry")
    studio.push(client, sentences, project="prediction retries", batch_size=10)
    fault_proxy.add("POST", r"/import/predictions$", "drop-after")
    fault_proxy.add("POST", r"/import/predictions$", "500")
    report = studio.push(client, sentences, project="prediction retries", predictor=predictor, model_version=version, batch_size=10)
    assert (report.tasks_created, report.predictions_created) == (0, 30)
    assert [hit.action for hit in fault_proxy.matching("POST", r"/import/predictions$")] == ["drop-after", "500", "forward", "forward"]
    predictions = predictions_by_task(studio_server, report.project_id)
    assert {sid: [p["model_version"] for p in found] for sid, found in predictions.items()} == {s.sentence_id: [version] for s in sentences}


def test_model_versions_are_read_as_the_backend_sends_them(studio_server: StudioServer) -> None:
    """A task's prediction model versions come as one string, joined with "," on SQLite and ", " on PostgreSQL: both are read right."""
    client = connect(studio_server)
    sentences = make_sentences(4, prefix="versions")
    for version in ("m-first", "m-second"):
        studio.push(
            client, sentences, project="model versions", predictor=lambda batch: [(["financing"], {"financing": 0.9})] * len(batch), model_version=version
        )
    project = studio.find_project(client, "model versions")
    raw = list(sdk(studio_server).tasks.list(project=project.id, fields="all", include="id,data,predictions_model_versions"))
    separator = {"sqlite": ",", "postgresql": ", "}[studio_server.backend]
    for task in raw:
        assert isinstance(task.predictions_model_versions, str)
        assert sorted(task.predictions_model_versions.split(separator)) == ["m-first", "m-second"], task.predictions_model_versions
    total, existing = studio.existing_tasks(client, project.id)
    assert total == 4
    assert {sid: task.model_versions for sid, task in existing.items()} == {s.sentence_id: frozenset({"m-first", "m-second"}) for s in sentences}


# --- secrets ---------------------------------------------------------------------------------


def test_api_key_never_appears(
    studio_server: StudioServer,
    fault_proxy: FaultProxy,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    keys = [studio_server.api_key, studio_server.personal_access_token()]
    seen: list[str] = []
    caplog.set_level(logging.DEBUG)
    sentences = make_sentences(15, prefix="secret")
    labels_dir = tmp_path / "labels"

    def unreachable(key: str) -> None:
        with closed_port() as port:
            studio.connect(f"http://127.0.0.1:{port}", key, timeout=1.0, retries=0)

    def record(error: BaseException) -> None:
        while error is not None:
            seen.extend([str(error), repr(error), *map(str, error.args)])
            error = error.__cause__ or error.__context__  # type: ignore[assignment]

    for key in keys:
        client = open_client(studio_server.url, key, **FAST)
        seen.append(repr(client))
        studio.push(client, sentences, project="secret keeping", batch_size=4)
        seen.append(studio.pull(client, project="secret keeping", labels_dir=labels_dir).model_dump_json())
        seen.append(studio.status(client, project="secret keeping").model_dump_json())
        for action in (
            lambda client=client: studio.pull(client, project="no such project", labels_dir=labels_dir),
            lambda key=key: unreachable(key),
            lambda key=key: studio.connect(studio_server.url, key[:-2] + "xx", timeout=5.0, retries=0),
        ):
            with pytest.raises(StudioError) as error:
                action()
            record(error.value)
        proxied = open_client(fault_proxy.url, key, timeout=5.0, retries=1, backoff=0.05)
        fault_proxy.add("GET", r"/api/tasks", "500", times=5)
        with pytest.raises(StudioError) as error:
            studio.push(proxied, sentences, project="secret keeping")
        record(error.value)
        fault_proxy.clear()
    out, err = capfd.readouterr()
    written = [p.read_text(encoding="utf-8", errors="replace") for p in labels_dir.rglob("*") if p.is_file()]
    assert written and caplog.text and seen
    for key in keys:
        for where, text in [
            ("logs", caplog.text),
            ("stdout", out),
            ("stderr", err),
            ("errors", "\n".join(seen)),
            ("files", "\n".join(written)),
        ]:
            assert key not in text, f"the API key appears in {where}"
            assert key[-16:] not in text, f"part of the API key appears in {where}"


# --- what an annotator sees ----------------------------------------------------------------


def ticked_labels(chromium: Chromium, *, expect: list[str], wait: float = 30.0) -> list[str]:
    """The labels whose checkbox is ticked on the page, read back from their readable names.

    The boxes are ticked when the prediction is applied, which may come after
    the first paint: wait up to ``wait`` seconds for ``expect`` to show.
    """
    deadline = time.monotonic() + wait
    while True:
        texts = chromium.evaluate(
            "[...document.querySelectorAll('input[type=checkbox]:checked')].map(e => (e.closest('label') || e.parentElement).innerText.trim())"
        )
        ticked = sorted(label for text in texts for label in LABELS if text.startswith(LABEL_NAMES[label]))
        if ticked == sorted(expect) or time.monotonic() > deadline:
            return ticked
        time.sleep(0.5)


def open_labelling_page(chromium: Chromium, url: str, needles: list[str], tmp_path: Path, name: str) -> tuple[str, str]:
    """Open ``url`` and wait until the labelling panel shows ``needles`` and every choice's checkbox; ``(text, dom)``."""
    chromium.navigate(url)
    text = chromium.wait_for_text(needles)
    # The labelling panel re-renders once after its first paint (when the
    # prediction arrives), so take the DOM once it holds every choice's checkbox.
    controls = [f'name="{label}"' for label in LABELS]
    deadline = time.monotonic() + 30
    dom = chromium.dom()
    while not all(control in dom for control in controls) and time.monotonic() < deadline:
        time.sleep(0.5)
        dom = chromium.dom()
    text = chromium.wait_for_text(needles, timeout=5)
    chromium.screenshot(tmp_path / f"{name}.png")
    (tmp_path / f"{name}.html").write_text(dom, encoding="utf-8")
    missing = [needle for needle in needles if needle not in text]
    assert not missing, f"not on the page: {missing} (screenshot: {tmp_path / f'{name}.png'})"
    return text, dom


def test_labelling_page_shows_choices_and_context(
    studio_server: StudioServer, chromium: Chromium, tmp_path: Path, annotate_backend: Callable[..., BackendServer], small_model: Path
) -> None:
    predictor, version = model_predictor()
    client = connect(studio_server)
    sentences = make_sentences(5, prefix="page")
    report = studio.push(client, sentences, project="labelling page", predictor=predictor, model_version=version)
    # A sentence with context on both sides that the model tags, so that the ticked boxes show its prediction.
    predicted_labels = dict(zip((s.sentence_id for s in sentences), (labels for labels, _ in predictor(sentences)), strict=True))
    shown = next((s for s in sentences if s.prev and s.next and predicted_labels[s.sentence_id]), None)
    assert shown is not None, f"the model tags none of the middle sentences: {predicted_labels}"
    predicted = sorted(predicted_labels[shown.sentence_id])
    task = task_ids_by_sentence(studio_server, report.project_id)[shown.sentence_id][0]

    chromium.open_page(studio_server.login())
    names = [LABEL_NAMES[label] for label in LABELS]
    hints = [LABEL_HINTS[label] for label in LABELS]
    url = f"{studio_server.url}/projects/{report.project_id}/data?task={task}"
    # The pushed pre-annotation's tab shows the version shortened in the middle; it
    # renders a moment after the panel, so the page is awaited until it is there.
    version_shown = [version[:8], version[-6:]]
    needles = [*names, *hints, shown.text, shown.prev, shown.next, shown.title, "Submit", *version_shown]
    _, dom = open_labelling_page(chromium, url, needles, tmp_path, "labelling-page")
    # Readable names and hints on the page; the stored values stay the label ids (the checkboxes' names).
    for label in LABELS:
        assert f'<input name="{label}"' in dom and f"<b>{LABEL_NAMES[label]}</b>" in dom, f"no checkbox for {label} in the DOM"
    for number in range(1, 5):
        assert f'<sup class="lsf-hint">[{number}]</sup>' in dom, f"no hotkey {number} shown"
    for context in (shown.text, shown.prev, shown.next, shown.title):
        assert context in dom
    assert (tmp_path / "labelling-page.png").stat().st_size > 10_000
    ticked = ticked_labels(chromium, expect=predicted)
    chromium.screenshot(tmp_path / "labelling-page-ticked.png")
    assert ticked == predicted, f"ticked {ticked}, predicted {predicted} (screenshot: {tmp_path / 'labelling-page-ticked.png'})"

    # The label stream opens with the instructions: the label guide from labels/README.md.
    guide = studio.label_guide().splitlines()
    heading = guide[0].lstrip("# ").strip()
    first_words = " ".join(next(line for line in guide[1:] if line.strip()).split()[:6])
    chromium.navigate(f"{studio_server.url}/projects/{report.project_id}/data?labeling=1")
    shown_first = chromium.wait_for_text([heading, first_words])
    chromium.screenshot(tmp_path / "instructions.png")
    assert heading in shown_first and first_words in shown_first, f"no instructions (screenshot: {tmp_path / 'instructions.png'})"

    # A task imported without a prediction gets one from the connected ML backend, ticked on the page.
    backend = annotate_backend("--model", str(small_model), "--versions", str(tmp_path / "versions"), "--retrain-after", "0")
    env = {"LABEL_STUDIO_URL": studio_server.url, "LABEL_STUDIO_API_KEY": studio_server.api_key, "ANNOTATE_BACKEND_PASSWORD": backend.password}
    connected = run_cli(["studio", "connect", "--project", "labelling page", "--backend", backend.url, "--json"], env=env)
    assert connected.exit_code == 0, connected.output
    backend_version = json.loads(connected.stdout)["backend"]["model_version"]
    backend_model = load_model(small_model)
    assert backend_version == backend_model.card.model_id != version
    imported = "Investors poured 80 million dollars into the start-up, and regulators must still approve its triage tool."
    sdk(studio_server).projects.import_tasks(report.project_id, request=[{"data": {"text": imported, "title": "Imported", "prev": "", "next": ""}}])
    new_task = max(t for ids in task_ids_by_sentence(studio_server, report.project_id).values() for t in ids)
    expected = sorted(backend_model.predict([imported])[0][0])
    assert expected, "the backend's model should tag this sentence"
    url = f"{studio_server.url}/projects/{report.project_id}/data?task={new_task}"
    # The backend's prediction is offered under its own version's tab.
    open_labelling_page(chromium, url, [*names, imported, "Submit", backend_version[:8], backend_version[-6:]], tmp_path, "backend-prediction")
    assert ticked_labels(chromium, expect=expected) == expected


# --- the command line ----------------------------------------------------------------------


def run_cli(args: list[str], *, env: dict[str, str] | None = None) -> Any:
    from click.testing import CliRunner

    from annotate.cli import cli

    return CliRunner().invoke(
        cli, args, env={"LABEL_STUDIO_URL": None, "LABEL_STUDIO_API_KEY": None, **(env or {})}, catch_exceptions=False
    )  # type: ignore[dict-item]


def write_sentences(path: Path, sentences: Sequence[Sentence]) -> Path:
    path.write_text("".join(s.model_dump_json() + "\n" for s in sentences), encoding="utf-8")
    return path


def test_cli_needs_url_and_key(tmp_path: Path) -> None:
    file = write_sentences(tmp_path / "s.jsonl", make_sentences(2, prefix="cli0"))
    result = run_cli(["studio", "push", str(file), "--project", "p12", "--url", "http://127.0.0.1:9"])
    assert (result.exit_code, result.stderr) == (2, "Error: LABEL_STUDIO_API_KEY is not set; export it or pass --api-key\n")
    result = run_cli(["studio", "status", "--project", "p12"], env={"LABEL_STUDIO_API_KEY": "k" * 40})
    assert (result.exit_code, result.stderr) == (2, "Error: LABEL_STUDIO_URL is not set; export it or pass --url\n")


def test_cli_says_label_studio_is_unreachable_with_exit_code_1(tmp_path: Path) -> None:
    with closed_port() as port:
        url = f"http://127.0.0.1:{port}"
        result = run_cli(["studio", "status", "--project", "anything", "--url", url], env={"LABEL_STUDIO_API_KEY": "0" * 40})
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr == f"Error: cannot reach Label Studio at {url} (connection refused); gave up after 4 attempts\n"


def test_cli_push_status_pull_and_errors(studio_server: StudioServer, tmp_path: Path) -> None:
    env = {"LABEL_STUDIO_URL": studio_server.url, "LABEL_STUDIO_API_KEY": studio_server.api_key}
    sentences = make_sentences(40, prefix="cli")
    file = write_sentences(tmp_path / "sentences.jsonl", sentences)

    pushed = run_cli(
        ["studio", "push", str(file), "--project", "cli project", "--batch-size", "15", "--model", "models/default", "-q"], env=env
    )
    assert pushed.exit_code == 0, pushed.output
    assert pushed.stdout.startswith("project 'cli project' (id ")
    assert "created): 40 tasks created, 0 already there (40 tasks now)" in pushed.stdout
    again = run_cli(["studio", "push", str(file), "--project", "cli project", "--json"], env=env)
    assert again.exit_code == 0 and json.loads(again.stdout)["tasks_skipped_existing"] == 40

    project_id = json.loads(again.stdout)["project_id"]
    first = task_ids_by_sentence(studio_server, project_id)[sentences[0].sentence_id][0]
    sdk(studio_server).annotations.create(id=first, result=choices("financing"))
    state = run_cli(["studio", "status", "--project", "cli project", "--json"], env=env)
    assert state.exit_code == 0, state.output
    assert {k: json.loads(state.stdout)[k] for k in ("tasks", "annotated", "skipped")} == {"tasks": 40, "annotated": 1, "skipped": 0}
    assert list(json.loads(state.stdout)["predictions"].values()) == [40]
    table = run_cli(["studio", "status", "--project", "cli project"], env=env)
    assert "tasks: 40, annotated: 1, skipped: 0, annotations: 1" in table.stdout

    pulled = run_cli(["studio", "pull", "--project", "cli project", "-o", str(tmp_path / "labels")], env=env)
    assert pulled.exit_code == 0, pulled.output
    assert "1 labelled sentences from 40 tasks (1 annotations) -> " in pulled.stdout
    assert "since last version: 1 new, 0 updated, 0 removed" in pulled.stdout
    assert (tmp_path / "labels" / "studio-v1.jsonl").exists()

    wrong = run_cli(["studio", "status", "--project", "cli project"], env={**env, "LABEL_STUDIO_API_KEY": "0" * 40})
    assert (wrong.exit_code, wrong.stderr) == (1, f"Error: Label Studio at {studio_server.url} rejected the API key (HTTP 401)\n")
    missing = run_cli(["studio", "pull", "--project", "no such project"], env=env)
    assert (missing.exit_code, missing.stderr) == (
        1,
        f"Error: no project titled 'no such project' in Label Studio at {studio_server.url}\n",
    )
    for result in (pushed, again, state, table, pulled, wrong, missing):
        assert studio_server.api_key not in result.output


def test_cli_push_accepts_rows_with_only_text(studio_server: StudioServer, tmp_path: Path) -> None:
    """Ids are derived as ingest derives them, so pushing the same minimal file again adds nothing."""
    env = {"LABEL_STUDIO_URL": studio_server.url, "LABEL_STUDIO_API_KEY": studio_server.api_key}
    texts = ["The start-up raised 40 million dollars.", "监管部门要求补充临床试验。", "The start-up raised 40 million dollars."]
    file = tmp_path / "minimal.jsonl"
    file.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts) + '{"text": "Named row.", "id": "named-1"}\n', encoding="utf-8")
    pushed = run_cli(["studio", "push", str(file), "--project", "minimal rows", "--json"], env=env)
    assert pushed.exit_code == 0, pushed.output
    report = json.loads(pushed.stdout)
    assert report["tasks_created"] == 4
    derived = {s.sentence_id for s in read_sentences(file)}
    assert set(task_ids_by_sentence(studio_server, report["project_id"])) == derived and "named-1" in derived
    again = run_cli(["studio", "push", str(file), "--project", "minimal rows", "--json"], env=env)
    assert (json.loads(again.stdout)["tasks_created"], json.loads(again.stdout)["tasks_skipped_existing"]) == (0, 4)


def test_full_loop_ingest_push_annotate_pull_train_classify(studio_server: StudioServer, tmp_path: Path) -> None:
    """The whole loop as a user runs it, with two annotators who sometimes disagree and one skip."""
    env = {"LABEL_STUDIO_URL": studio_server.url, "LABEL_STUDIO_API_KEY": studio_server.api_key}
    examples = Path(__file__).resolve().parents[2] / "examples"
    sentences_file = tmp_path / "sentences.jsonl"
    assert run_cli(["ingest", str(examples), "-o", str(sentences_file), "-q"]).exit_code == 0
    sentences = [Sentence.model_validate_json(line) for line in sentences_file.read_text().splitlines()]
    assert len(sentences) >= 40

    pushed = run_cli(["studio", "push", str(sentences_file), "--project", "full loop", "--model", "models/default", "--json"], env=env)
    assert pushed.exit_code == 0, pushed.output
    report = json.loads(pushed.stdout)
    assert report["tasks_created"] == report["predictions_created"] == len(sentences)

    # The annotators start from the pre-annotations: alice accepts them, bob
    # (on every other sentence) changes one label every third time, carol skips one.
    predictor, version = model_predictor()
    predicted = dict(zip((s.sentence_id for s in sentences), (labels for labels, _ in predictor(sentences)), strict=True))
    tasks = {sid: ids[0] for sid, ids in task_ids_by_sentence(studio_server, report["project_id"]).items()}
    alice, bob, carol = (studio_server.create_annotator(name) for name in ("alice", "bob2", "carol2"))
    as_alice, as_bob, as_carol = (sdk(studio_server, a.api_key) for a in (alice, bob, carol))
    changed = 0
    for number, sentence in enumerate(sentences):
        labels = predicted[sentence.sentence_id]
        as_alice.annotations.create(id=tasks[sentence.sentence_id], result=choices(*labels) if labels else [])
        if number % 2 == 0:
            flip = LABELS[number % 4]
            if number % 3 == 0:
                labels = [label for label in labels if label != flip] if flip in labels else [*labels, flip]
                changed += 1
            as_bob.annotations.create(id=tasks[sentence.sentence_id], result=choices(*labels) if labels else [])
    as_carol.annotations.create(id=tasks[sentences[1].sentence_id], result=[], was_cancelled=True)

    labels_dir = tmp_path / "labels"
    pulled = run_cli(["studio", "pull", "--project", "full loop", "-o", str(labels_dir), "--json"], env=env)
    assert pulled.exit_code == 0, pulled.output
    label_set = json.loads(pulled.stdout)["label_set"]
    assert (label_set["rows"], label_set["skipped_cancelled"], label_set["ties"]) == (len(sentences), 1, changed)

    model_dir = tmp_path / "model"
    trained = run_cli(["train", "--labels", str(labels_dir), "-o", str(model_dir), "--no-eval", "--json"])
    assert trained.exit_code == 0, trained.output
    assert json.loads(trained.stdout)["training_sentences"] == len(sentences)
    results = tmp_path / "results.jsonl"
    classified = run_cli(["classify", "--sentences", str(sentences_file), "--model", str(model_dir), "-o", str(results), "-q"])
    assert classified.exit_code == 0, classified.output
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == len(sentences) and all(set(r["labels"]) <= set(LABELS) for r in rows)
    # Trained on what the annotators settled, the model finds their labels again: per label F1
    # against the settled labels (a model that tags nothing scores 0 here, however often "no" is right).
    settled = {json.loads(line)["sentence_id"]: json.loads(line) for line in (labels_dir / "studio-v1.jsonl").read_text().splitlines()}
    f1 = {}
    for label in LABELS:
        truth = {sid for sid, row in settled.items() if row[label]}
        found = {r["sentence_id"] for r in rows if label in r["labels"]}
        f1[label] = 2 * len(truth & found) / (len(truth) + len(found)) if truth or found else 1.0
    print(f"full loop: per-label F1 of the retrained model against the settled labels {f1}")
    assert min(f1.values()) >= 0.8, f"the retrained model misses what the annotators settled: F1 {f1}"

    # A second model version reaches the tasks already there, beside the first.
    again = run_cli(["studio", "push", str(sentences_file), "--project", "full loop", "--model", str(model_dir), "--json"], env=env)
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["predictions_created"] == len(sentences)
    state = json.loads(run_cli(["studio", "status", "--project", "full loop", "--json"], env=env).stdout)
    assert len(state["predictions"]) == 2 and set(state["predictions"].values()) == {len(sentences)}
    assert version in state["predictions"]
    assert state["per_annotator"] == {alice.email: len(sentences), bob.email: (len(sentences) + 1) // 2}

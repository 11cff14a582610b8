"""A Label Studio ML backend: predictions from the current model, retraining as annotations arrive.

:func:`create_app` builds the ASGI app (Starlette; the CLI runs it with
uvicorn) that speaks the protocol Label Studio 1.23 uses:

``GET /health``
    ``{"status": "UP", "model_version": ..., "retraining": {...}}``; a failed
    training shows here (``last_error``) while the backend stays UP.
``POST /setup``
    ``{"project": "<id>.<created>", "schema": <labelling config>, ...}`` ->
    ``{"model_version": ...}``. Label Studio calls it before every prediction
    request, and stores the version it returns.
``POST /predict``
    ``{"tasks": [...], "project": ..., "label_config": ...}`` ->
    ``{"results": [...], "model_version": ...}``, one entry per task: a
    prediction, or an empty list for a task whose ``data.text`` is not a
    sentence (Label Studio then stores nothing for that task alone).
``POST /webhook``
    Label Studio's events: annotation events count towards the next
    retraining; ``START_TRAINING`` (the "Start training" button) starts one.

Every error is a JSON object with one ``error`` line and a 4xx status; an
unexpected failure is logged with its traceback and answered with a 500
that says only that. All routes need HTTP basic auth unless the app is made
with ``auth=None``.

:class:`Retrainer` runs one training at a time, each in a fresh process:
it pulls the projects that sent annotations (:func:`annotate.studio.pull`,
label set ``studio_p<project id>``), trains on the whole label folder
(:func:`annotate.train.train`) into a new version folder, and only when
that model loads is it swapped in and recorded in ``<versions>/current``.
Until then, and after any failure, predictions come from the current model.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
import multiprocessing
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import anyio.to_thread
import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ._io import atomic_write
from .classify import Model, decide_batch, load_model
from .errors import AnnotateError, InputError, ModelError
from .schemas import Recipe
from .studio import config_fits, prediction_confidence, prediction_payload

logger = logging.getLogger(__name__)

CURRENT_FILE = "current"
VERSION_PREFIX = "live-"
DEFAULT_MAX_BODY = 32 << 20
# Retraining starts this long after the last annotation event once enough have
# arrived, so a burst trains once; but never later than MAX_WAIT_FACTOR times it.
MAX_WAIT_FACTOR = 6
ANNOTATION_EVENTS = frozenset({"ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Refused(Exception):
    """A request the backend answers with a 4xx and a one-line JSON error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# --- model versions on disk ----------------------------------------------------------


def current_model_dir(model_dir: Path, versions_dir: Path) -> Path:
    """The model to serve: the retrained version named in ``versions_dir/current``, else ``model_dir``."""
    pointer = versions_dir / CURRENT_FILE
    if not pointer.exists():
        return model_dir
    name = pointer.read_text(encoding="utf-8").strip()
    if not re.fullmatch(rf"{VERSION_PREFIX}\d+", name) or not (versions_dir / name).is_dir():
        raise ModelError(f"{pointer} names {name!r}, which is not a model version in {versions_dir}; delete {pointer} to serve the --model")
    return versions_dir / name


def next_version_dir(versions_dir: Path) -> Path:
    numbers = [int(p.name[len(VERSION_PREFIX) :]) for p in versions_dir.glob(f"{VERSION_PREFIX}*") if p.name[len(VERSION_PREFIX) :].isdigit()]
    return versions_dir / f"{VERSION_PREFIX}{max(numbers, default=0) + 1:04d}"


# --- the training process ------------------------------------------------------------


@dataclass(frozen=True)
class TrainingJob:
    """What one retraining needs; it is sent to a fresh process."""

    studio_url: str
    studio_key: str = field(repr=False)
    projects: tuple[int, ...]
    labels_dir: Path
    model_dir: Path
    recipe: Recipe
    log_level: int = logging.INFO
    tuned_archive: Path | None = None  # the served model's tuned transformer, kept as it is


class TrainingOutcome(BaseModel):
    model_dir: str
    model_version: str
    sentences: int
    pulled: dict[int, int]
    seconds: float


def label_set_name(project_id: int) -> str:
    return f"studio_p{project_id}"


def run_training(job: TrainingJob) -> TrainingOutcome:
    """Pull the projects' annotations into ``job.labels_dir`` and train a model into ``job.model_dir``."""
    from . import studio
    from .train import train_label_sets

    started = time.perf_counter()
    pulled: dict[int, int] = {}
    with studio.connect(job.studio_url, job.studio_key) as client:
        for project_id in job.projects:
            report = studio.pull(client, project=project_id, labels_dir=job.labels_dir, name=label_set_name(project_id))
            pulled[project_id] = report.label_set.rows
            logger.info("pulled project %s: %d labelled sentences (%d new, %d updated)", project_id, report.label_set.rows, report.label_set.new, report.label_set.updated)
    result = train_label_sets(job.labels_dir, model_dir=job.model_dir, recipe=job.recipe, evaluate=False, tuned_archive=job.tuned_archive)
    return TrainingOutcome(
        model_dir=str(job.model_dir),
        model_version=result.card.model_id,
        sentences=result.card.training_sentences,
        pulled=pulled,
        seconds=round(time.perf_counter() - started, 2),
    )


def _training_process(job: TrainingJob, connection: Connection) -> None:
    logging.basicConfig(level=job.log_level, format="%(asctime)s %(levelname)s %(name)s [training]: %(message)s")
    try:
        outcome: tuple[str, Any] = ("ok", run_training(job).model_dump())
    except AnnotateError as e:
        outcome = ("error", str(e))
    except Exception as e:  # anything else is a bug: keep its traceback in the log
        logger.exception("training failed")
        outcome = ("error", f"{type(e).__name__}: {e}")
    connection.send(outcome)
    connection.close()


def _wait_for(connection: Connection, process: BaseProcess) -> tuple[str, Any]:
    try:
        kind, payload = connection.recv()
        return str(kind), payload
    except EOFError:
        process.join()
        return ("error", f"the training process stopped without an answer (exit code {process.exitcode})")
    finally:
        connection.close()
        process.join()


# --- the coordinator -----------------------------------------------------------------


class TrainingStatus(BaseModel):
    """What ``/health`` reports about retraining."""

    enabled: bool
    reason: str | None = None
    threshold: int
    pending_annotations: int = 0
    running: bool = False
    trainings: int = 0
    failures: int = 0
    last_error: str | None = None
    last_finished: str | None = None
    last_seconds: float | None = None
    last_sentences: int | None = None


class Retrainer:
    """Counts annotation events and retrains in a separate process, one training at a time.

    Once ``threshold`` annotations are pending, a training starts when none
    has arrived for ``debounce`` seconds (at most ``MAX_WAIT_FACTOR *
    debounce`` after the threshold was reached). Events that arrive during a
    training count towards the next one. ``start`` (Label Studio's "Start
    training") trains at once, or right after the running training.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        studio_url: str | None,
        studio_key: str | None,
        labels_dir: Path,
        versions_dir: Path,
        threshold: int = 20,
        debounce: float = 10.0,
    ) -> None:
        self.backend = backend
        self._studio_url = studio_url
        self._studio_key = studio_key
        self.labels_dir = labels_dir
        self.versions_dir = versions_dir
        self.threshold = threshold
        self.debounce = debounce
        reason = None
        if threshold < 1:
            reason = "turned off (--retrain-after 0)"
        elif not studio_url:
            reason = "LABEL_STUDIO_URL is not set, so annotations cannot be read"
        elif not studio_key:
            reason = "LABEL_STUDIO_API_KEY is not set, so annotations cannot be read"
        self.status = TrainingStatus(enabled=reason is None, reason=reason, threshold=threshold)
        self.pending: Counter[int] = Counter()
        self._again = False
        self._due_first: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._process: BaseProcess | None = None

    # -- events ------------------------------------------------------------------------

    def annotations(self, project_id: int, count: int) -> None:
        """``count`` annotations of ``project_id`` were created or changed."""
        if not self.status.enabled or count < 1:
            return
        self.pending[project_id] += count
        self.status.pending_annotations = sum(self.pending.values())
        if self.status.pending_annotations >= self.threshold:
            self._arm()

    def start(self, project_id: int) -> None:
        """Train now on ``project_id`` (and whatever else is pending)."""
        if not self.status.enabled:
            return
        self.pending.setdefault(project_id, 0)
        self._cancel_timer()
        self._begin()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._due_first is None:
            self._due_first = now
        due = min(now + self.debounce, self._due_first + MAX_WAIT_FACTOR * self.debounce)
        self._cancel_timer()
        self._timer = loop.call_at(due, self._begin)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _begin(self) -> None:
        self._timer = None
        if self._task is not None and not self._task.done():
            self._again = True
            return
        projects = tuple(sorted(self.pending))
        self.pending.clear()
        self.status.pending_annotations = 0
        self._due_first = None
        self._task = asyncio.create_task(self._train(projects), name="annotate-retrain")

    # -- a training ----------------------------------------------------------------------

    async def _train(self, projects: tuple[int, ...]) -> None:
        assert self._studio_url and self._studio_key
        self.status.running = True
        target = next_version_dir(self.versions_dir)
        # The served model's recipe and tuned transformer: a fast model is retrained as a fast model.
        served = self.backend.model
        job = TrainingJob(
            self._studio_url, self._studio_key, projects, self.labels_dir, target, served.card.recipe, logging.getLogger().getEffectiveLevel(),
            tuned_archive=served.tuned.archive if served.tuned is not None else None,
        )  # fmt: skip
        logger.info("retraining on projects %s into %s", ", ".join(map(str, projects)), target)
        try:
            kind, payload = await self._run_process(job)
            if kind != "ok":
                raise ModelError(str(payload))
            outcome = TrainingOutcome.model_validate(payload)
            model = await anyio.to_thread.run_sync(load_model, Path(outcome.model_dir))
            self.backend.switch(model)
            self.versions_dir.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.versions_dir / CURRENT_FILE) as handle:
                handle.write(target.name + "\n")
            self.status.trainings += 1
            self.status.last_error = None
            self.status.last_seconds = outcome.seconds
            self.status.last_sentences = outcome.sentences
            logger.info("now serving model %s (%d sentences, trained in %.1f s)", model.card.model_id, outcome.sentences, outcome.seconds)
            await anyio.to_thread.run_sync(self._show_version, projects, model.card.model_id)
        except AnnotateError as e:
            self.status.failures += 1
            self.status.last_error = str(e)
            logger.error("retraining failed, still serving model %s: %s", self.backend.model.card.model_id, e)
        except Exception as e:  # a bug: keep serving, and keep the traceback in the log
            self.status.failures += 1
            self.status.last_error = f"{type(e).__name__}: {e}"
            logger.exception("retraining failed, still serving model %s", self.backend.model.card.model_id)
        finally:
            self.status.running = False
            self.status.last_finished = datetime.now(UTC).isoformat(timespec="seconds")
            self._process = None
        if self._again or self.status.pending_annotations >= self.threshold:
            self._again = False
            self._begin()

    async def _run_process(self, job: TrainingJob) -> tuple[str, Any]:
        # spawn: a fresh interpreter, not a fork of a process with threads and an event loop
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_training_process, args=(job, sender), name="annotate-retrain")
        process.start()
        sender.close()
        self._process = process
        return await anyio.to_thread.run_sync(_wait_for, receiver, process)

    def _show_version(self, projects: tuple[int, ...], model_version: str) -> None:
        """Have each project show the new version's predictions (see :func:`annotate.studio.show_backend_version`)."""
        from . import studio

        assert self._studio_url and self._studio_key
        try:
            with studio.connect(self._studio_url, self._studio_key) as client:
                for project_id in projects:
                    studio.show_backend_version(client, project_id, model_version, auth=self.backend.auth)
        except AnnotateError as e:
            self.status.last_error = f"model {model_version} is served, but Label Studio was not told: {e}"
            logger.error("%s", self.status.last_error)

    async def close(self) -> None:
        """Stop a running training (its half-written version folder is never served) and the timer."""
        self._cancel_timer()
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 30)


# --- the app -------------------------------------------------------------------------


class Backend:
    """The model being served; :meth:`switch` replaces it in one assignment."""

    def __init__(self, model: Model, *, auth: tuple[str, str] | None) -> None:
        self.model = model
        self.auth = auth

    def switch(self, model: Model) -> None:
        # Requests hold the model they started with, so one answer never mixes versions.
        self.model = model


class PredictTask(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: int | None = None
    data: dict[str, Any]


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    tasks: list[PredictTask]
    project: str | int | None = None
    label_config: str | None = None


class SetupRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    project: str | int | None = None
    label_config: str | None = Field(default=None, alias="schema")


class Webhook(BaseModel):
    model_config = ConfigDict(extra="allow")
    action: str
    project: dict[str, Any] | None = None
    annotation: dict[str, Any] | list[dict[str, Any]] | None = None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _validated(model: type[BaseModel], body: Any) -> Any:
    if not isinstance(body, dict):
        raise Refused(422, f"the request body must be a JSON object, not {type(body).__name__}")
    try:
        return model.model_validate(body)
    except ValidationError as e:
        error = e.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "body"
        raise Refused(422, _one_line(f"{where}: {error['msg']}")) from None


def project_id(value: Any) -> int | None:
    """Label Studio names a project ``"<id>.<created timestamp>"`` in /setup and /predict, by id elsewhere."""
    match = re.match(r"^\s*(\d+)", str(value if value is not None else ""))
    return int(match.group(1)) if match else None


def _sentence(task: PredictTask) -> tuple[str | None, str]:
    text = task.data.get("text")
    if text is None:
        return None, "no 'text' in its data"
    if not isinstance(text, str):
        return None, f"its 'text' is a {type(text).__name__}, not a sentence"
    if not text.strip():
        return None, "its 'text' is empty"
    return text, ""


def predictions(model: Model, tasks: list[PredictTask]) -> list[Any]:
    """One entry per task: a Label Studio prediction with per-label ``scores``, or ``[]`` (no prediction)."""
    texts: list[str] = []
    neighbours: list[tuple[str, str]] = []
    where: list[int] = []
    for index, task in enumerate(tasks):
        text, reason = _sentence(task)
        if text is None:
            logger.warning("task %s: no prediction, %s", task.id if task.id is not None else f"#{index}", reason)
            continue
        texts.append(text)
        # Tasks pushed by this toolkit carry their neighbours; others are judged alone.
        neighbours.append(tuple(value if isinstance(value := task.data.get(key), str) else "" for key in ("prev", "next")))  # type: ignore[arg-type]
        where.append(index)
    results: list[Any] = [[] for _ in tasks]
    if not texts:
        return results
    labels, scores = decide_batch(model.predict_proba(texts, neighbours), model.thresholds)
    version = model.card.model_id
    for index, chosen, score in zip(where, labels, scores, strict=True):
        results[index] = {**prediction_payload(chosen, score=prediction_confidence(score), model_version=version), "scores": score}
    return results


def create_app(
    model: Model,
    *,
    auth: tuple[str, str] | None,
    labels_dir: Path,
    versions_dir: Path,
    studio_url: str | None = None,
    studio_key: str | None = None,
    retrain_after: int = 20,
    debounce: float = 10.0,
    max_body: int = DEFAULT_MAX_BODY,
) -> Starlette:
    """The ML backend app serving ``model``; ``auth=(user, password)`` for HTTP basic auth, or None.

    ``studio_url`` and ``studio_key`` let it read annotations for retraining;
    without them it only predicts (``/health`` says why).
    """
    if auth is not None and not all(auth):
        raise InputError("basic auth needs a user and a password")
    backend = Backend(model, auth=auth)
    retrainer = Retrainer(
        backend,
        studio_url=studio_url,
        studio_key=studio_key,
        labels_dir=labels_dir,
        versions_dir=versions_dir,
        threshold=retrain_after,
        debounce=debounce,
    )

    async def read_json(request: Request) -> Any:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body):
            raise Refused(413 if length.isdigit() else 400, f"the request body must be at most {max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise Refused(413, f"the request body must be at most {max_body} bytes")
            chunks.append(chunk)
        try:
            return orjson.loads(b"".join(chunks))
        except orjson.JSONDecodeError as e:
            raise Refused(400, _one_line(f"the request body is not JSON ({e})")) from None

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "UP", "model_version": backend.model.card.model_id, "retraining": retrainer.status.model_dump()})

    async def setup(request: Request) -> Response:
        body: SetupRequest = _validated(SetupRequest, await read_json(request))
        if body.label_config is not None and not config_fits(body.label_config):
            raise Refused(422, "the project's labelling config has no <Choices name=\"labels\" toName=\"text\"> with the four label ids; use schemas/label_config.xml")
        return JSONResponse({"model_version": backend.model.card.model_id})

    # The model already uses every core (the encoder runs as many threads as there are); parallel
    # predictions only oversubscribe them: 20 clients got 1.4 requests/s in all, one at a time ~100.
    inference = threading.Lock()

    def predictions_one_at_a_time(model: Model, tasks: list[PredictTask]) -> list[Any]:
        with inference:
            return predictions(model, tasks)

    async def predict(request: Request) -> Response:
        body: PredictRequest = _validated(PredictRequest, await read_json(request))
        if body.label_config is not None and not config_fits(body.label_config):
            raise Refused(422, "the project's labelling config has no <Choices name=\"labels\" toName=\"text\"> with the four label ids; use schemas/label_config.xml")
        model = backend.model
        results = await anyio.to_thread.run_sync(predictions_one_at_a_time, model, body.tasks)
        return JSONResponse({"results": results, "model_version": model.card.model_id})

    async def webhook(request: Request) -> Response:
        event: Webhook = _validated(Webhook, await read_json(request))
        if event.action not in ANNOTATION_EVENTS and event.action != "START_TRAINING":
            return JSONResponse({"status": "ignored", "action": event.action})
        project = project_id((event.project or {}).get("id"))
        if project is None:
            raise Refused(422, f"project.id: a {event.action} event needs the project's id")
        if event.action == "START_TRAINING":
            retrainer.start(project)
            return JSONResponse({"status": "training" if retrainer.status.enabled else "off", "reason": retrainer.status.reason})
        annotations = event.annotation if isinstance(event.annotation, list) else [event.annotation or {}]
        retrainer.annotations(project, sum(1 for a in annotations if not a.get("was_cancelled")))
        return JSONResponse({"status": "ok", "pending_annotations": retrainer.status.pending_annotations})

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        logger.info("%s %s refused (%d): %s", request.method, request.url.path, exc.status, exc)
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return JSONResponse({"error": _one_line(str(exc.detail))}, status_code=exc.status_code, headers=exc.headers)

    async def crashed(request: Request, exc: Exception) -> Response:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": "the backend failed on this request; its log has the details"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        logger.info("serving model %s; retraining: %s", backend.model.card.model_id, retrainer.status.reason or f"after {retrain_after} annotations")
        yield
        await retrainer.close()

    app = Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/setup", setup, methods=["POST"]),
            Route("/predict", predict, methods=["POST"]),
            Route("/webhook", webhook, methods=["POST"]),
        ],
        exception_handlers={Refused: refused, HTTPException: http_error, Exception: crashed},
        lifespan=lifespan,
    )
    if auth is not None:
        app.add_middleware(BasicAuth, user=auth[0], password=auth[1])
    app.state.backend = backend
    app.state.retrainer = retrainer
    return app


class BasicAuth:
    """ASGI middleware: HTTP basic auth on every request, compared in constant time."""

    def __init__(self, app: ASGIApp, *, user: str, password: str) -> None:
        self.app = app
        self._expected = f"{user}:{password}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._accepts(dict(scope["headers"]).get(b"authorization", b"")):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        logger.warning("%s %s from %s: missing or wrong basic auth", scope.get("method"), scope.get("path"), client[0])
        response = JSONResponse(
            {"error": "this backend needs HTTP basic auth with its user and password"},
            status_code=401,
            headers={"WWW-Authenticate": 'Basic realm="annotate"'},
        )
        await response(scope, receive, send)

    def _accepts(self, header: bytes) -> bool:
        scheme, _, value = header.partition(b" ")
        if scheme.lower() != b"basic":
            return False
        try:
            given = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected)

"""Label Studio: the labelling config, task and prediction payloads, and the client.

The payload builders at the top are plain data and need no server; ``export``
uses them to write an import file. Below them, :func:`connect`, :func:`push`,
:func:`pull` and :func:`status` drive a running Label Studio through
``label_studio_sdk``; this is the only module that imports it. At the end,
:func:`connect_backend` and :func:`show_backend_version` register an ML
backend (``annotate serve``) with a project and keep the version it serves
the one annotators see.

Every call to the server goes through :meth:`StudioClient.call`, which retries
timeouts, dropped connections and HTTP 5xx a bounded number of times with
exponential backoff, and turns whatever is left into a one-line
:class:`~annotate.errors.StudioError`. Calls that create something (projects,
tasks, predictions) are never blindly re-sent: after a failure the project is
read again and only what is still missing is sent, so a retry cannot duplicate.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape, unescape
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Self, TypeVar, cast

import httpx
import orjson
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError
from label_studio_sdk.core.request_options import RequestOptions
from pydantic import BaseModel

from ._io import atomic_write
from .dataset import ImportReport, import_export
from .errors import InputError, StudioAuthError, StudioConnectionError, StudioError
from .labels import LABEL_HINTS, LABEL_NAMES, LABELS
from .schemas import SCHEMA_DIR, Sentence

if TYPE_CHECKING:
    from .classify import Model

logger = logging.getLogger(__name__)

LABEL_CONFIG_PATH = SCHEMA_DIR / "label_config.xml"
LABEL_GUIDE_PATH = SCHEMA_DIR.parent / "labels" / "README.md"
CHOICES_NAME = "labels"
TEXT_NAME = "text"


def choice_html(label: str) -> str:
    """What annotators read on a choice: its name and one-line hint (the stored value stays ``label``)."""
    return f'<b>{escape(LABEL_NAMES[label])}</b> <span style="color:#666">{escape(LABEL_HINTS[label])}</span>'


def label_config() -> str:
    """Return the labelling config XML generated from :data:`LABELS`."""
    choices = "\n".join(
        f'    <Choice value="{label}" hotkey="{number}" html="{escape(choice_html(label))}"/>' for number, label in enumerate(LABELS, start=1)
    )
    return f"""<View>
  <Header value="$title" size="4"/>
  <View style="color: #666; font-size: 90%">
    <Text name="prev" value="$prev" granularity="word"/>
  </View>
  <View style="padding: 8px; border-left: 4px solid #4a90d9; background: #f5f9ff">
    <Text name="{TEXT_NAME}" value="$text" granularity="word"/>
  </View>
  <View style="color: #666; font-size: 90%">
    <Text name="next" value="$next" granularity="word"/>
  </View>
  <Choices name="{CHOICES_NAME}" toName="{TEXT_NAME}" choice="multiple" showInline="false">
{choices}
  </Choices>
  <TextArea name="note" toName="{TEXT_NAME}" placeholder="Note for the reviewers (optional)" rows="2" maxSubmissions="1" editable="true"/>
</View>
"""


def read_label_config(path: Path = LABEL_CONFIG_PATH) -> str:
    return path.read_text(encoding="utf-8")


def _storable(text: str) -> str:
    # Label Studio on PostgreSQL answers HTTP 500 to a task holding U+0000 (a JSON
    # column cannot store it); ingest keeps the character, so it is replaced here.
    return text.replace("\x00", "\ufffd")


def config_fits(xml: str) -> bool:
    """Whether a labelling config has our choices: ``labels`` on ``text``, one per label id.

    Only the part predictions depend on is checked, so layout, names and hints may change.
    """
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return False
    for choices in root.iter("Choices"):
        if choices.get("name") == CHOICES_NAME and choices.get("toName") == TEXT_NAME:
            return sorted(c.get("value", "") for c in choices.iter("Choice")) == sorted(LABELS)
    return False


def label_guide(path: Path = LABEL_GUIDE_PATH) -> str:
    """The label guide's Markdown: from the ``## Label guide`` heading up to the next ``## `` heading."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise InputError(f"cannot read the label guide ({e.strerror})", path=path) from e
    start = next((i for i, line in enumerate(lines) if line.strip().lower().startswith("## label guide")), None)
    if start is None:
        raise InputError("no '## Label guide' section", path=path)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    return "\n".join(lines[start:end]).strip() + "\n"


def instructions_html(path: Path = LABEL_GUIDE_PATH) -> str:
    """The label guide as HTML, for the project's instructions (raw HTML in the Markdown is escaped)."""
    from markdown_it import MarkdownIt

    return str(MarkdownIt("commonmark", {"html": False}).enable("table").render(label_guide(path)))


def visible_text(html: str) -> str:
    """The words a reader sees in ``html``: Label Studio cleans instructions with bleach, so compare these."""
    return " ".join(unescape(re.sub(r"<[^>]*>", " ", html)).split())


def task_data(sentence: Sentence) -> dict[str, Any]:
    """The ``data`` of a Label Studio task for one sentence (NUL characters shown as U+FFFD)."""
    return {
        "text": _storable(sentence.text),
        "title": _storable(sentence.title),
        "prev": _storable(sentence.prev),
        "next": _storable(sentence.next),
        "sentence_id": sentence.sentence_id,
        "article_id": sentence.article_id,
        "paragraph": sentence.paragraph,
        "lang": sentence.lang,
        "source": _storable(sentence.source),
    }


def prediction_payload(labels: Sequence[str], *, score: float, model_version: str) -> dict[str, Any]:
    """A pre-annotation in Label Studio's format, validated against :data:`LABELS`.

    The server accepts choices that are not in the config, so this is the
    only check that they are.
    """
    unknown = sorted(set(labels) - set(LABELS))
    if unknown:
        raise InputError(f"prediction has labels not in the labelling config: {', '.join(unknown)}")
    result = []
    if labels:
        result.append(
            {
                "from_name": CHOICES_NAME,
                "to_name": TEXT_NAME,
                "type": "choices",
                "value": {"choices": [label for label in LABELS if label in labels]},
            }
        )
    return {"model_version": model_version, "score": round(float(score), 4), "result": result}


def prediction_confidence(scores: dict[str, float]) -> float:
    """How sure the model is of its least certain label (0.5 = a coin toss, 1 = certain).

    Used as the prediction's ``score``, so sorting tasks by it puts the
    sentences where the model hesitated on any label first.
    """
    if not scores:
        return 1.0
    return float(min(max(float(score), 1.0 - float(score)) for score in scores.values()))


def predictions_for(sentences: Sequence[Sentence], model: Model) -> list[dict[str, Any]]:
    """The model's pre-annotation for each sentence."""
    return [
        prediction_payload(labels, score=prediction_confidence(scores), model_version=model.card.model_id)
        for labels, scores in model.predict_sentences(sentences)
    ]


def build_tasks(
    sentences: Iterable[Sentence],
    predictions: Iterable[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Label Studio import tasks, each with its prediction when given."""
    if predictions is None:
        return [{"data": task_data(sentence)} for sentence in sentences]
    return [{"data": task_data(sentence), "predictions": [prediction]} for sentence, prediction in zip(sentences, predictions, strict=True)]


# --- the client ------------------------------------------------------------------------

Predictor = Callable[[Sequence[Sentence]], list[tuple[list[str], dict[str, float]]]]
"""``predictor(sentences) -> [(labels, {label: probability}), ...]``, one per sentence, as :meth:`~annotate.classify.Model.predict_sentences`."""

_T = TypeVar("_T")
_MAX_DELAY = 30.0
_PAGE_SIZE = 5000
# What a request to Label Studio can fail with: transport errors, HTTP errors,
# and answers that are not JSON (ValueError), e.g. from something else at that URL.
_FAILURES = (httpx.TransportError, ApiError, ValueError)
_SECRET_HEADERS = frozenset({"set-cookie", "cookie", "authorization", "x-api-key"})
_RAW_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")


class StudioClient:
    """A checked connection to one Label Studio server; make one with :func:`connect`.

    The API key lives only inside the SDK client: it is not an attribute here,
    and every message this class produces has it masked.
    """

    def __init__(
        self, sdk: LabelStudio, *, url: str, timeout: float, retries: int, backoff: float, secret: str, http: httpx.Client | None = None
    ) -> None:
        self.sdk = sdk
        self._http = http
        self.url = url
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.user_email = ""
        self._secret = secret

    def __repr__(self) -> str:
        return f"StudioClient(url={self.url!r})"

    def close(self) -> None:
        """Close the connections to the server."""
        if self._http is not None:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def options(self, timeout: float | None = None) -> RequestOptions:
        """SDK ``request_options``: our timeout, and no SDK-level retries (we retry)."""
        return {"timeout": timeout or self.timeout, "max_retries": 0}

    def delay(self, attempt: int) -> float:
        return float(min(self.backoff * 2.0**attempt, _MAX_DELAY))

    def redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def call(self, what: str, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run one idempotent SDK call, retrying transient failures with backoff."""
        attempt = 0
        while True:
            try:
                return fn(*args, **kwargs)
            except _FAILURES as e:
                if not is_transient(e) or attempt >= self.retries:
                    self.fail(e, what, attempts=attempt + 1)
                self.wait(e, what, attempt)
                attempt += 1

    def wait(self, error: BaseException, what: str, attempt: int) -> None:
        pause = self.delay(attempt)
        logger.warning(
            "Label Studio at %s: %s while %s (attempt %d of %d); retrying in %.1f s",
            self.url,
            self.redact(_short(error)),
            what,
            attempt + 1,
            self.retries + 1,
            pause,
        )
        time.sleep(pause)

    def fail(self, error: BaseException, what: str, *, attempts: int = 1) -> NoReturn:
        """Raise the :class:`StudioError` that describes ``error`` in one line."""
        raise self.error(error, what, attempts=attempts) from error

    def error(self, error: BaseException, what: str, *, attempts: int = 1) -> StudioError:
        gave_up = f"; gave up after {attempts} attempts" if attempts > 1 else ""
        url = self.url
        result: StudioError
        if isinstance(error, StudioError):
            return error
        if isinstance(error, ApiError) and error.headers:
            # The SDK's str(ApiError) shows response headers, session cookies included.
            error.headers = {k: v for k, v in error.headers.items() if k.lower() not in _SECRET_HEADERS}
        if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
            result = StudioConnectionError(f"cannot reach Label Studio at {url} ({_reason(error)}){gave_up}")
        elif isinstance(error, httpx.TimeoutException):
            result = StudioConnectionError(f"Label Studio at {url} did not answer within {self.timeout:g} s while {what}{gave_up}")
        elif isinstance(error, httpx.TransportError):
            result = StudioConnectionError(f"the connection to Label Studio at {url} broke while {what} ({_reason(error)}){gave_up}")
        elif isinstance(error, ApiError):
            status = error.status_code
            if status in (401, 403):
                result = StudioAuthError(f"Label Studio at {url} rejected the API key (HTTP {status})", status=status)
            elif status is not None and status >= 500:
                result = StudioError(f"Label Studio at {url} failed while {what} (HTTP {status}){gave_up}", status=status)
            else:
                result = StudioError(f"Label Studio at {url} refused {what} (HTTP {status}: {_detail(error.body)})", status=status)
        elif isinstance(error, ValueError):
            # e.g. a token refresh answered with HTML: not a Label Studio at that URL
            result = StudioError(f"Label Studio at {url} sent an answer that is not Label Studio's while {what} ({_short(error)})")
        else:
            raise error
        result.args = (self.redact(str(result)),)
        return result


def is_transient(error: BaseException) -> bool:
    """Worth retrying: timeouts, refused or dropped connections, HTTP 5xx/429/408."""
    if isinstance(error, httpx.TransportError):
        return True
    if isinstance(error, ApiError):
        return error.status_code is not None and (error.status_code >= 500 or error.status_code in (408, 429))
    return False


def _short(error: BaseException) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status_code}"
    return _reason(error)


def _reason(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text.splitlines()[0][:200]


def _detail(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("validation_errors", "detail", "error"):
            if body.get(key):
                text = body[key] if isinstance(body[key], str) else orjson.dumps(body[key]).decode()
                return text[:300]
    return str(body)[:300]


def connect(url: str, api_key: str, *, timeout: float = 30.0, retries: int = 3, backoff: float = 1.0) -> StudioClient:
    """Connect to Label Studio at ``url`` and check that ``api_key`` is accepted.

    ``api_key`` is a legacy token or a Personal Access Token (a JWT refresh
    token, which the SDK exchanges for short-lived access tokens). Timeouts,
    refused connections and HTTP 5xx are retried ``retries`` times, waiting
    ``backoff``, ``2*backoff``, ... seconds.

    Close the client when done (or use it in a ``with`` block).

    Raises
    ------
    StudioConnectionError
        Nothing answers at ``url``.
    StudioAuthError
        The server rejected the key (HTTP 401/403), or the token has expired.
    """
    url = url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise InputError(f"Label Studio URL must start with http:// or https://, got {url!r}")
    if not api_key or not api_key.strip():
        raise InputError("LABEL_STUDIO_API_KEY is not set; export it or pass --api-key")
    api_key = api_key.strip()
    http = httpx.Client(timeout=timeout, follow_redirects=True)
    try:
        sdk = LabelStudio(base_url=url, api_key=api_key, timeout=timeout, max_retries=0, httpx_client=http)  # type: ignore[no-untyped-call]
    except ApiError as e:  # an expired or malformed JWT is refused before any request
        http.close()
        raise StudioAuthError(f"Label Studio at {url} rejected the API key ({_detail(e.body)})", status=e.status_code) from None
    client = StudioClient(sdk, url=url, timeout=timeout, retries=retries, backoff=backoff, secret=api_key, http=http)
    try:
        me = client.call("checking the API key", sdk.users.whoami, request_options=client.options())
    except BaseException:
        client.close()
        raise
    client.user_email = str(getattr(me, "email", "") or "")
    logger.info("connected to Label Studio at %s as %s", url, client.user_email or "?")
    return client


# --- projects ------------------------------------------------------------------------


def _canonical_config(xml: str) -> str:
    try:
        return ET.canonicalize(xml, strip_text=True)
    except ET.ParseError:
        return xml.strip()


def same_config(a: str, b: str) -> bool:
    """Equal labelling configs, ignoring whitespace between tags and attribute order."""
    return _canonical_config(a) == _canonical_config(b)


def find_project(client: StudioClient, project: str) -> Any | None:
    """The project titled exactly ``project``, or None; several is an error."""
    pager: list[Any] = client.call(
        f"looking up project {project!r}",
        lambda: list(client.sdk.projects.list(title=project, page_size=1000, request_options=client.options())),
    )
    matches = [p for p in pager if p.title == project]
    if len(matches) > 1:
        ids = ", ".join(str(p.id) for p in matches)
        raise StudioError(f"{len(matches)} projects in Label Studio at {client.url} are titled {project!r} (ids {ids}); rename all but one")
    if not matches:
        return None
    return client.call(f"reading project {project!r}", client.sdk.projects.get, matches[0].id, request_options=client.options())


def _require_project(client: StudioClient, project: str | int) -> Any:
    """The project titled ``project``, or with id ``project`` when it is an int."""
    if isinstance(project, int):
        return client.call(f"reading project {project}", client.sdk.projects.get, project, request_options=client.options())
    found = find_project(client, project)
    if found is None:
        raise StudioError(f"no project titled {project!r} in Label Studio at {client.url}")
    return found


class EnsuredProject(NamedTuple):
    project: Any
    created: bool
    config_updated: bool
    instructions_updated: bool


def ensure_project(client: StudioClient, project: str, *, update_config: bool = False) -> EnsuredProject:
    """Find or create the project, with our labelling config and the label guide as its instructions.

    The instructions are rewritten whenever their text differs from the label
    guide in ``labels/README.md``, which is where the guide is maintained.
    """
    if len(project.strip()) < 3:
        raise InputError(f"project name {project!r} is too short: Label Studio needs at least 3 characters")
    config = read_label_config()
    instructions = instructions_html()
    found = find_project(client, project)
    attempt = 0
    while found is None:
        try:
            created = client.sdk.projects.create(
                title=project, label_config=config, expert_instruction=instructions, show_instruction=True, request_options=client.options()
            )
        except _FAILURES as e:
            if not is_transient(e) or attempt >= client.retries:
                client.fail(e, f"creating project {project!r}", attempts=attempt + 1)
            client.wait(e, f"creating project {project!r}", attempt)
            attempt += 1
            # The server may have created it before the answer was lost: look again.
            found = find_project(client, project)
            if found is not None:
                return EnsuredProject(found, True, False, _ensure_instructions(client, found, instructions))
            continue
        logger.info("created project %r (id %s)", project, created.id)
        return EnsuredProject(created, True, False, False)
    config_updated = False
    if not same_config(found.label_config or "", config):
        if not update_config:
            raise StudioError(f"project {project} has a different labelling config than schemas/label_config.xml; rerun with --update-config")
        # Label Studio checks the new config against existing annotations and
        # refuses (HTTP 400) a config that would orphan them; nothing is deleted.
        found = client.call(
            f"updating the labelling config of project {project!r}",
            client.sdk.projects.update,
            found.id,
            label_config=config,
            request_options=client.options(),
        )
        config_updated = True
        logger.info("updated the labelling config of project %r", project)
    return EnsuredProject(found, False, config_updated, _ensure_instructions(client, found, instructions))


def _ensure_instructions(client: StudioClient, project: Any, instructions: str) -> bool:
    if getattr(project, "show_instruction", False) and visible_text(project.expert_instruction or "") == visible_text(instructions):
        return False
    client.call(
        f"setting the instructions of project {project.title!r}",
        client.sdk.projects.update,
        project.id,
        expert_instruction=instructions,
        show_instruction=True,
        request_options=client.options(),
    )
    logger.info("project %r: instructions set to the label guide", project.title)
    return True


# --- push ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ExistingTask:
    task_id: int
    model_versions: frozenset[str]


class PushReport(BaseModel):
    """What :func:`push` did."""

    project_id: int
    project: str
    created_project: bool
    config_updated: bool = False
    tasks_before: int
    tasks_created: int
    tasks_skipped_existing: int
    predictions_created: int
    model_version: str | None = None


def existing_tasks(client: StudioClient, project_id: int, *, model_versions: bool = True) -> tuple[int, dict[str, ExistingTask]]:
    """``(number of tasks, {sentence_id: task})`` for a project.

    One listing of id and data (and the prediction model versions, unless
    ``model_versions`` is false), 5,000 tasks a page: measured on 20k tasks
    at 8-19 s, against 17-25 s for an export and ~60 s for the SDK's default
    paging of full tasks. Without the model versions it is ~15% quicker.
    """

    def read() -> tuple[int, dict[str, ExistingTask]]:
        found: dict[str, ExistingTask] = {}
        total = 0
        pager: Iterable[Any] = client.sdk.tasks.list(
            project=project_id,
            fields="all" if model_versions else "task_only",
            include="id,data,predictions_model_versions" if model_versions else "id,data",
            page_size=_PAGE_SIZE,
            request_options=client.options(max(client.timeout, 120.0)),
        )
        for task in pager:
            total += 1
            data = task.data or {}
            sentence_id = data.get("sentence_id") if isinstance(data, dict) else None
            if sentence_id is None or str(sentence_id) in found:
                continue
            found[str(sentence_id)] = ExistingTask(int(task.id), _model_versions(getattr(task, "predictions_model_versions", None)))
        return total, found

    return client.call("reading the project's tasks", read)


def _model_versions(value: Any) -> frozenset[str]:
    # One string whatever the database: Label Studio joins the versions with "," on
    # SQLite and with ", " on PostgreSQL (and cuts the string at 500 characters).
    if not value:
        return frozenset()
    return frozenset(v.strip() for v in str(value).split(",") if v.strip())


def predict_payloads(sentences: Sequence[Sentence], predictor: Predictor, *, model_version: str) -> list[dict[str, Any]]:
    """Validated Label Studio predictions for ``sentences`` (all at once: the model judges each in its article); raises before anything is sent."""
    outputs = predictor(sentences)
    if len(outputs) != len(sentences):
        raise InputError(f"the model returned {len(outputs)} predictions for {len(sentences)} sentences")
    payloads: list[dict[str, Any]] = []
    for sentence, (labels, scores) in zip(sentences, outputs, strict=True):
        try:
            payloads.append(prediction_payload(labels, score=prediction_confidence(scores), model_version=model_version))
        except InputError as e:
            raise InputError(f"sentence {sentence.sentence_id}: {e}") from e
    return payloads


def push(
    client: StudioClient,
    sentences: Sequence[Sentence],
    *,
    project: str,
    predictor: Predictor | None = None,
    model_version: str | None = None,
    batch_size: int = 500,
    update_config: bool = False,
    progress: Callable[[int], None] | None = None,
) -> PushReport:
    """Import ``sentences`` into project ``project`` as tasks, each sentence once.

    Creates the project (labelling config from ``schemas/label_config.xml``)
    or reuses it. Sentences whose ``sentence_id`` is already a task are
    skipped, so pushing the same or an overlapping file again, or re-running
    an interrupted push, creates no duplicate. With ``predictor``, new tasks
    carry its prediction and existing tasks without a prediction of
    ``model_version`` get one; the project's model version is set to
    ``model_version`` so annotators see them.

    ``progress(n)`` is called as sentences are handled; the ``n``s add up to
    the number of distinct sentence ids.

    Raises
    ------
    InputError
        A prediction with a label that is not in the labelling config
        (nothing has been sent then), or bad arguments.
    StudioError
        Several projects with that title, a different labelling config
        (without ``update_config``), a batch the server rejected (naming its
        first and last sentence_id), or a server that kept failing.
    """
    if batch_size < 1:
        raise InputError(f"batch size must be at least 1, got {batch_size}")
    if predictor is not None and not model_version:
        raise InputError("a model_version is needed to push predictions")
    unique: dict[str, Sentence] = {}
    for sentence in sentences:
        unique.setdefault(sentence.sentence_id, sentence)
    tick = progress or (lambda n: None)
    # Predict and validate everything before touching the server, so a bad
    # label sends nothing (predicting is cheap next to a round trip).
    predicted: dict[str, dict[str, Any]] = {}
    if predictor is not None and model_version:
        payloads = predict_payloads(list(unique.values()), predictor, model_version=model_version)
        predicted = dict(zip(unique, payloads, strict=True))

    found, created, config_updated, _ = ensure_project(client, project, update_config=update_config)
    project_id = int(found.id)
    tasks_before, existing = (0, {}) if created else existing_tasks(client, project_id, model_versions=predictor is not None)
    new = [s for sid, s in unique.items() if sid not in existing]
    lacking: list[tuple[int, Sentence]] = []
    new_predictions: list[dict[str, Any]] | None = None
    old_predictions: list[dict[str, Any]] = []
    if predictor is not None and model_version:
        lacking = [
            (existing[sid].task_id, unique[sid]) for sid in unique if sid in existing and model_version not in existing[sid].model_versions
        ]
        new_predictions = [predicted[s.sentence_id] for s in new]
        old_predictions = [predicted[s.sentence_id] for _, s in lacking]
    tick(len(unique) - len(new) - len(lacking))

    report = PushReport(
        project_id=project_id,
        project=project,
        created_project=created,
        config_updated=config_updated,
        tasks_before=tasks_before,
        tasks_created=0,
        tasks_skipped_existing=len(unique) - len(new),
        predictions_created=0,
        model_version=model_version if predictor is not None else None,
    )
    tasks = build_tasks(new, new_predictions)
    for start in range(0, len(new), batch_size):
        batch = new[start : start + batch_size]
        _import_batch(client, project_id, batch, tasks[start : start + batch_size])
        report.tasks_created += len(batch)
        if new_predictions is not None:
            report.predictions_created += len(batch)
        tick(len(batch))
    if lacking and model_version:
        for start in range(0, len(lacking), batch_size):
            batch_pairs = lacking[start : start + batch_size]
            payloads = [
                {"task": task_id, **prediction}
                for (task_id, _), prediction in zip(batch_pairs, old_predictions[start : start + batch_size], strict=True)
            ]
            _import_predictions(client, project_id, batch_pairs, payloads, model_version)
            report.predictions_created += len(batch_pairs)
            tick(len(batch_pairs))
    if predictor is not None and model_version:
        has_version = report.predictions_created > 0 or any(model_version in t.model_versions for t in existing.values())
        if has_version:
            _show_predictions(client, found, model_version)
    logger.info(
        "project %r: %d tasks created, %d already there, %d predictions added",
        project,
        report.tasks_created,
        report.tasks_skipped_existing,
        report.predictions_created,
    )
    return report


def _show_predictions(client: StudioClient, project: Any, model_version: str) -> None:
    """Make ``model_version`` the project's active one, so annotators see its predictions.

    Label Studio refuses (HTTP 400) a model version that has no predictions
    yet, so this runs after they are imported; a re-run after an
    interruption gets here too.
    """
    current = client.call(f"reading project {project.title!r}", client.sdk.projects.get, project.id, request_options=client.options())
    if (current.model_version or "") == model_version and getattr(current, "show_collab_predictions", True) is not False:
        return
    client.call(
        f"setting the model version of project {project.title!r}",
        client.sdk.projects.update,
        project.id,
        model_version=model_version,
        show_collab_predictions=True,
        request_options=client.options(),
    )
    logger.info("project %r now shows predictions of model %s", project.title, model_version)


def _import_batch(client: StudioClient, project_id: int, batch: Sequence[Sentence], tasks: list[dict[str, Any]]) -> None:
    first, last = batch[0].sentence_id, batch[-1].sentence_id
    what = f"importing sentences {first} … {last}"
    pending = list(zip(batch, tasks, strict=True))
    attempt = 0
    while pending:
        try:
            client.sdk.projects.import_tasks(project_id, request=[cast(Any, task) for _, task in pending], request_options=client.options())
            return
        except _FAILURES as e:
            if isinstance(e, ApiError) and not is_transient(e) and e.status_code not in (401, 403):
                client.error(e, what)  # scrubs the cookies out of the chained SDK error
                raise StudioError(
                    f"Label Studio at {client.url} rejected the batch of sentences {first} … {last} "
                    f"(HTTP {e.status_code}: {client.redact(_detail(e.body))})",
                    status=e.status_code,
                ) from e
            if not is_transient(e) or attempt >= client.retries:
                client.fail(e, what, attempts=attempt + 1)
            client.wait(e, what, attempt)
            attempt += 1
            # The server may have imported the batch before the failure reached us.
            _, existing = existing_tasks(client, project_id, model_versions=False)
            pending = [(s, t) for s, t in pending if s.sentence_id not in existing]


def _import_predictions(
    client: StudioClient, project_id: int, pairs: Sequence[tuple[int, Sentence]], payloads: list[dict[str, Any]], model_version: str
) -> None:
    first, last = pairs[0][1].sentence_id, pairs[-1][1].sentence_id
    what = f"adding predictions to sentences {first} … {last}"
    pending = list(zip(pairs, payloads, strict=True))
    attempt = 0
    while pending:
        try:
            client.sdk.projects.import_predictions(project_id, request=[cast(Any, p) for _, p in pending], request_options=client.options())
            return
        except _FAILURES as e:
            if not is_transient(e) or attempt >= client.retries:
                client.fail(e, what, attempts=attempt + 1)
            client.wait(e, what, attempt)
            attempt += 1
            _, existing = existing_tasks(client, project_id)
            pending = [
                (pair, p)
                for pair, p in pending
                if model_version not in existing.get(pair[1].sentence_id, ExistingTask(0, frozenset())).model_versions
            ]


# --- pull ----------------------------------------------------------------------------


class PullReport(BaseModel):
    """What :func:`pull` fetched, kept and changed."""

    project_id: int
    project: str
    tasks: int
    annotations: int
    snapshot: str
    snapshot_written: bool
    previous_snapshot: str | None = None
    previous_annotations: int | None = None
    annotations_lost: int = 0
    fewer_annotations: bool = False
    warning: str | None = None
    label_set: ImportReport


def export_project(client: StudioClient, project_id: int, *, what: str) -> bytes:
    """The project's JSON export (every task, with annotations), as the server sent it.

    Uses an export snapshot (create, wait, download), which both the
    Community and Enterprise editions serve, then deletes the snapshot.
    """
    long = client.options(max(client.timeout * 10, 600.0))
    export: Any = client.call(what, client.sdk.projects.exports.create, project_id, title="annotate studio pull", request_options=long)
    deadline = time.monotonic() + max(client.timeout * 20, 1800.0)
    while getattr(export, "status", "completed") not in ("completed", "failed"):
        if time.monotonic() > deadline:
            raise StudioError(f"Label Studio at {client.url} did not finish the export of project {project_id} in time")
        time.sleep(1.0)
        export = client.call(what, client.sdk.projects.exports.get, project_id, export_pk=export.id, request_options=client.options())
    if export.status == "failed":
        raise StudioError(f"Label Studio at {client.url} failed to export project {project_id}")
    raw = client.call(
        what,
        lambda: b"".join(client.sdk.projects.exports.download(project_id, export_pk=export.id, export_type="JSON", request_options=long)),
    )
    try:
        client.sdk.projects.exports.delete(project_id, export_pk=export.id, request_options=client.options())
    except _FAILURES as e:  # only housekeeping on the server: the export is in hand
        logger.debug("could not delete export %s: %s", export.id, client.redact(_short(e)))
    return raw


def _snapshots(raw_dir: Path, name: str) -> list[Path]:
    pattern = re.compile(rf"^{re.escape(name)}-\d{{8}}T\d{{6}}(\.\d+)?Z\.json$")
    return sorted(p for p in raw_dir.glob(f"{name}-*.json") if pattern.match(p.name))


def _annotation_ids(tasks: list[dict[str, Any]]) -> set[Any]:
    return {(task.get("id"), a.get("id")) for task in tasks for a in task.get("annotations") or []}


def pull(client: StudioClient, *, project: str | int, labels_dir: Path, name: str = "studio") -> PullReport:
    """Fetch the project's annotations and write the next version of label set ``name``.

    ``project`` is the project's title, or its id as an int.

    The raw export is kept as ``labels_dir/raw/<name>-<UTC time>.json``
    (unless it is byte-identical to the last one), then turned into a label
    set exactly as ``annotate labels import`` does. An export with fewer
    annotations than the last snapshot is reported loudly (a warning and
    ``fewer_annotations``); both snapshots stay.
    """
    if not _RAW_NAME.match(name):
        raise InputError(f"label-set name {name!r} must be letters, digits, '_' or '.'")
    labels_dir = Path(labels_dir)
    found = _require_project(client, project)
    project = str(found.title)
    raw = export_project(client, int(found.id), what=f"exporting project {project!r}")
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        raise StudioError(f"Label Studio at {client.url} sent an export of project {project!r} that is not JSON") from e
    if not isinstance(payload, list):
        raise StudioError(f"Label Studio at {client.url} sent an export of project {project!r} that is not a list of tasks")

    raw_dir = labels_dir / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    earlier = _snapshots(raw_dir, name)
    previous = earlier[-1] if earlier else None
    previous_payload: list[dict[str, Any]] | None = None
    if previous is not None:
        try:
            previous_bytes = previous.read_bytes()
            previous_payload = orjson.loads(previous_bytes)
        except (OSError, orjson.JSONDecodeError) as e:
            logger.warning("cannot read the previous snapshot %s (%s); not comparing", previous, e)
            previous_bytes = b""
    if previous is not None and previous_payload is not None and hashlib.sha256(previous_bytes).digest() == hashlib.sha256(raw).digest():
        snapshot, written = previous, False
    else:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"
        snapshot, written = raw_dir / f"{name}-{stamp}.json", True
        with atomic_write(snapshot, mode="wb") as handle:
            handle.write(raw)

    now_ids = _annotation_ids(payload)
    report_fields: dict[str, Any] = {}
    warning = None
    if previous_payload is not None and written:
        before_ids = _annotation_ids(previous_payload)
        lost = len(before_ids - now_ids)
        fewer = len(now_ids) < len(before_ids)
        report_fields = {"previous_annotations": len(before_ids), "annotations_lost": lost, "fewer_annotations": fewer}
        if fewer or lost:
            warning = (
                f"project {project!r} now has {len(now_ids)} annotations against {len(before_ids)} at the last pull; "
                f"{lost} are gone from Label Studio. Both snapshots are kept: {previous} and {snapshot}"
            )
            logger.warning("%s", warning)
    elif previous_payload is not None:
        report_fields = {"previous_annotations": len(now_ids)}

    label_set = import_export(payload, labels_dir=labels_dir, name=name, origin=f"{client.url} project {project!r}")
    return PullReport(
        project_id=int(found.id),
        project=project,
        tasks=len(payload),
        annotations=len(now_ids),
        snapshot=str(snapshot),
        snapshot_written=written,
        previous_snapshot=str(previous) if previous is not None and written else None,
        warning=warning,
        label_set=label_set,
        **report_fields,
    )


# --- status --------------------------------------------------------------------------


class StatusReport(BaseModel):
    """How far the annotators are: counts from one export of the project."""

    project_id: int
    project: str
    model_version: str = ""
    tasks: int
    annotated: int
    skipped: int
    annotations: int
    per_label: dict[str, int]
    per_annotator: dict[str, int]
    predictions: dict[str, int]
    backends: list[BackendState] = []


def _emails(client: StudioClient) -> dict[int, str]:
    try:
        users = client.sdk.users.list(request_options=client.options())
    except ApiError as e:  # an annotator may not see the user list; fall back to ids
        if e.status_code in (401, 403):
            return {}
        client.fail(e, "listing users")
    except _FAILURES as e:
        client.fail(e, "listing users")
    return {int(u.id): str(u.email) for u in users if getattr(u, "email", None)}


def status(client: StudioClient, *, project: str) -> StatusReport:
    """Tasks, annotated tasks, skips, choices per label and per annotator, predictions per model version.

    ``annotated`` counts tasks with at least one completed (not skipped)
    annotation; ``skipped`` counts skipped (cancelled) annotations;
    ``per_label`` counts how often each label was chosen in completed
    annotations; ``per_annotator`` counts completed annotations;
    ``predictions`` counts the tasks that carry a prediction of each model version.
    """
    found = _require_project(client, project)
    project_id = int(found.id)
    payload = orjson.loads(export_project(client, project_id, what=f"exporting project {project!r}"))
    emails = _emails(client)
    per_label: Counter[str] = Counter({label: 0 for label in LABELS})
    per_annotator: Counter[str] = Counter()
    annotated = skipped = annotations = 0
    for task in payload:
        done = False
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                skipped += 1
                continue
            done = True
            annotations += 1
            who = annotation.get("completed_by")
            if isinstance(who, dict):
                who = who.get("email") or who.get("id")
            per_annotator[emails.get(who, f"user:{who}") if isinstance(who, int) else str(who)] += 1
            for region in annotation.get("result") or []:
                if region.get("type") == "choices":
                    per_label.update(region.get("value", {}).get("choices", []))
        annotated += done
    predictions = _prediction_counts(client, project_id)
    return StatusReport(
        project_id=project_id,
        project=project,
        model_version=found.model_version or "",
        tasks=len(payload),
        annotated=annotated,
        skipped=skipped,
        annotations=annotations,
        per_label=dict(per_label),
        per_annotator=dict(sorted(per_annotator.items())),
        predictions=predictions,
        backends=backend_states(client, project_id),
    )


def _prediction_counts(client: StudioClient, project_id: int) -> dict[str, int]:
    _, existing = existing_tasks(client, project_id)
    counts: Counter[str] = Counter()
    for task in existing.values():
        counts.update(task.model_versions)
    return dict(sorted(counts.items()))


# --- ML backends ---------------------------------------------------------------------

# The annotation events that change a label set; the webhook gets only these,
# so a big import (TASKS_CREATED carries every task) is never posted to the backend.
BACKEND_WEBHOOK_ACTIONS = ("ANNOTATION_CREATED", "ANNOTATIONS_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_DELETED")
_UP_STATES = frozenset({"CO", "TR", "PR"})


class BackendState(BaseModel):
    """An ML backend of a project as Label Studio sees it (it asks the backend's /health and /setup first)."""

    id: int
    url: str
    title: str
    state: str
    up: bool
    model_version: str
    error: str | None = None


class ConnectReport(BaseModel):
    """What :func:`connect_backend` found and changed; ``changed`` is empty when all was in place."""

    project_id: int
    project: str
    backend: BackendState
    changed: list[str]


def _backend_state(backend: Any) -> BackendState:
    state = str(getattr(backend, "state", "") or "")
    readable = str(getattr(backend, "readable_state", "") or state)
    return BackendState(
        id=int(backend.id),
        url=str(backend.url),
        title=str(backend.title or ""),
        state=readable,
        up=state in _UP_STATES,
        model_version=str(backend.model_version or ""),
        error=str(backend.error_message) if backend.error_message else None,
    )


def _list_backends(client: StudioClient, project_id: int) -> list[Any]:
    # Label Studio asks every backend for /health and /setup before it answers.
    return client.call(
        f"listing the ML backends of project {project_id}",
        lambda: list(client.sdk.ml.list(project=project_id, request_options=client.options())),
    )


def backend_states(client: StudioClient, project_id: int) -> list[BackendState]:
    """The project's ML backends, each with its state (up or down) and model version."""
    return [_backend_state(b) for b in _list_backends(client, project_id)]


def _same_url(a: str, b: str) -> bool:
    return a.strip().rstrip("/") == b.strip().rstrip("/")


def _auth_fields(auth: tuple[str, str] | None) -> dict[str, Any]:
    if auth is None:
        return {"auth_method": "NONE"}
    return {"auth_method": "BASIC_AUTH", "basic_auth_user": auth[0], "basic_auth_pass": auth[1]}


def connect_backend(
    client: StudioClient, *, project: str, backend_url: str, auth: tuple[str, str] | None, update_config: bool = False
) -> ConnectReport:
    """Register the ML backend at ``backend_url`` with ``project`` and have annotators see its predictions.

    Makes sure that: the project exists with our labelling config and the
    label guide as instructions; the backend is registered (with HTTP basic
    ``auth``), titled with the model version it serves, and is the project's
    model version; predictions are fetched for tasks as they are opened; the
    webhook that tells the backend about annotations carries the same
    credentials. Only what differs is changed, so a second run changes nothing.

    ``backend_url`` is the address *Label Studio* reaches the backend at, and
    the backend must be running: Label Studio checks it before registering.
    """
    url = backend_url.strip().rstrip("/")
    if not re.match(r"^https?://[^/\s]+", url):
        raise InputError(f"backend URL must start with http:// or https://, got {backend_url!r}")
    found, created, config_updated, instructions_updated = ensure_project(client, project, update_config=update_config)
    project_id = int(found.id)
    changed = [what for what, done in (("project created", created), ("labelling config", config_updated)) if done]
    if instructions_updated and not created:
        changed.append("instructions")
    mine = [b for b in _list_backends(client, project_id) if _same_url(str(b.url), url)]
    wanted_auth = _auth_fields(auth)
    if not mine:
        backend = client.call(
            f"registering the ML backend {url} with project {project!r}",
            client.sdk.ml.create,
            project=project_id,
            url=url,
            title="annotate",
            is_interactive=False,
            auto_update=True,
            **wanted_auth,
            request_options=client.options(),
        )
        changed.append("backend registered")
        logger.info("registered the ML backend %s with project %r", url, project)
    else:
        backend = mine[0]
        stale = (
            str(backend.auth_method or "NONE") != wanted_auth["auth_method"]
            or (auth is not None and backend.basic_auth_user != auth[0])
            or bool(backend.is_interactive)
            or backend.auto_update is False
            # Label Studio checked the stored password just now: a backend that
            # is not up either is down or was registered with other credentials.
            or str(backend.state or "") not in _UP_STATES
        )
        if stale:
            backend = client.call(
                f"updating the ML backend {url} of project {project!r}",
                client.sdk.ml.update,
                backend.id,
                project=project_id,
                url=url,
                is_interactive=False,
                auto_update=True,
                **wanted_auth,
                request_options=client.options(),
            )
            changed.append("backend settings")
    state = _backend_state(backend)
    if not state.up:
        raise StudioError(f"Label Studio at {client.url} cannot use the ML backend at {url}: {state.state} ({state.error or 'no answer'})")
    changed += show_backend_version(client, project_id, state.model_version, auth=auth)
    changed += _ensure_prelabelling(client, project_id)
    changed += _ensure_backend_webhook(client, project_id, url, auth)
    final = next(b for b in backend_states(client, project_id) if b.id == state.id)
    return ConnectReport(project_id=project_id, project=str(found.title), backend=final, changed=changed)


def show_backend_version(client: StudioClient, project_id: int, model_version: str, *, auth: tuple[str, str] | None) -> list[str]:
    """Make ``model_version`` the project's, so annotators see the predictions the backend serving it makes.

    Label Studio shows predictions of the project's model version only, and
    accepts as that version only one with predictions or an ML backend with
    that title. So the backend that answers ``/setup`` with ``model_version``
    is titled with it (Label Studio then moves the project's version along),
    and the project's version is set if it still differs. Returns what changed.
    """
    changed: list[str] = []
    serving = [b for b in _list_backends(client, project_id) if str(b.model_version or "") == model_version]
    if not serving:
        raise StudioError(f"no ML backend of project {project_id} in Label Studio at {client.url} serves model version {model_version}")
    for backend in serving:
        if backend.title == model_version:
            continue
        # Label Studio checks a backend again on every change: it needs project, URL and credentials each time.
        client.call(
            f"titling the ML backend {backend.url} with its model version",
            client.sdk.ml.update,
            backend.id,
            project=project_id,
            url=backend.url,
            title=model_version,
            **_auth_fields(auth),
            request_options=client.options(),
        )
        changed.append("backend title")
    current = client.call(f"reading project {project_id}", client.sdk.projects.get, project_id, request_options=client.options())
    if (current.model_version or "") != model_version:
        client.call(
            f"setting the model version of project {project_id}",
            client.sdk.projects.update,
            project_id,
            model_version=model_version,
            request_options=client.options(),
        )
        changed.append("project model version")
    if changed:
        logger.info("project %s now shows predictions of model %s", project_id, model_version)
    return changed


def _ensure_prelabelling(client: StudioClient, project_id: int) -> list[str]:
    current = client.call(f"reading project {project_id}", client.sdk.projects.get, project_id, request_options=client.options())
    if current.show_collab_predictions and current.evaluate_predictions_automatically:
        return []
    client.call(
        f"turning on predictions for project {project_id}",
        client.sdk.projects.update,
        project_id,
        show_collab_predictions=True,
        evaluate_predictions_automatically=True,
        request_options=client.options(),
    )
    return ["prelabelling"]


def _ensure_backend_webhook(client: StudioClient, project_id: int, backend_url: str, auth: tuple[str, str] | None) -> list[str]:
    """The webhook to the backend's /webhook: annotation events only, with the backend's credentials.

    Label Studio creates one when a backend is registered, for every event
    and without credentials, which a backend with basic auth refuses (401).
    """
    url = f"{backend_url}/webhook"
    headers = {"Authorization": "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()} if auth else {}
    wanted = {"headers": headers, "actions": sorted(BACKEND_WEBHOOK_ACTIONS), "send_for_all_actions": False, "send_payload": True, "is_active": True}
    hooks: list[Any] = client.call(
        f"listing the webhooks of project {project_id}",
        lambda: list(client.sdk.webhooks.list(project=str(project_id), request_options=client.options())),
    )
    mine = [h for h in hooks if _same_url(str(h.url), url) and getattr(h, "project", project_id) == project_id]
    if not mine:
        client.call("creating the backend's webhook", client.sdk.webhooks.create, url=url, project=project_id, **wanted, request_options=client.options())
        return ["webhook"]
    hook = mine[0]
    have = {
        "headers": hook.headers or {},
        "actions": sorted(str(a) for a in hook.actions or []),
        "send_for_all_actions": hook.send_for_all_actions,
        "send_payload": hook.send_payload,
        "is_active": hook.is_active,
    }
    if have == wanted:
        return []
    client.call("updating the backend's webhook", client.sdk.webhooks.update, hook.id, url=url, **wanted, request_options=client.options())
    return ["webhook"]


if __name__ == "__main__":
    with atomic_write(LABEL_CONFIG_PATH) as handle:
        handle.write(label_config())

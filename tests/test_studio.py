"""The retry machinery of ``annotate.studio`` without a server: what is retried, how long it waits, what it hides.

The SDK talks to an ``httpx.MockTransport`` here; ``tests/integration`` proves
the same behaviour against a real Label Studio.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
from label_studio_sdk import LabelStudio
from label_studio_sdk.core.api_error import ApiError

from annotate import studio
from annotate.errors import StudioAuthError, StudioConnectionError, StudioError
from annotate.schemas import Sentence

URL = "http://studio.test"
KEY = "0123456789abcdef0123456789abcdef01234567"


def client_answering(answers: list[httpx.Response | Exception], *, retries: int = 3, backoff: float = 1.0) -> tuple[studio.StudioClient, list[str]]:
    """A client whose server gives ``answers`` in turn; returns it and the list of requests made."""
    requests: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(f"{request.method} {request.url.path}")
        answer = answers[min(len(requests), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    http = httpx.Client(transport=httpx.MockTransport(handle))
    sdk = LabelStudio(base_url=URL, api_key=KEY, httpx_client=http)  # type: ignore[no-untyped-call]
    return studio.StudioClient(sdk, url=URL, timeout=5.0, retries=retries, backoff=backoff, secret=KEY, http=http), requests


@pytest.fixture
def pauses(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits between attempts, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)
    return waited


def whoami(client: studio.StudioClient) -> Callable[[], object]:
    return lambda: client.call("checking the API key", client.sdk.users.whoami, request_options=client.options())


ME = httpx.Response(200, json={"id": 1, "email": "admin@annotate.test"})


def api_error(status: int | None) -> ApiError:
    return ApiError(status_code=status, body={"detail": "x"})


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.RemoteProtocolError("dropped"), True),
        (api_error(500), True),
        (api_error(502), True),
        (api_error(503), True),
        (api_error(429), True),
        (api_error(408), True),
        (api_error(400), False),
        (api_error(401), False),
        (api_error(403), False),
        (api_error(404), False),
        (api_error(None), False),
        (ValueError("an HTML page"), False),
    ],
    ids=lambda value: f"HTTP-{value.status_code}" if isinstance(value, ApiError) else type(value).__name__ if isinstance(value, Exception) else str(value),
)
def test_what_is_worth_retrying(error: Exception, transient: bool) -> None:
    assert studio.is_transient(error) is transient


def test_the_wait_doubles_up_to_thirty_seconds() -> None:
    client, _ = client_answering([ME], backoff=1.5)
    assert [client.delay(attempt) for attempt in range(7)] == [1.5, 3.0, 6.0, 12.0, 24.0, 30.0, 30.0]


def test_transient_failures_are_retried_with_growing_waits(pauses: list[float]) -> None:
    client, requests = client_answering([httpx.Response(503), httpx.ConnectError("refused"), httpx.Response(502), ME])
    me = whoami(client)()
    assert me.email == "admin@annotate.test"
    assert pauses == [1.0, 2.0, 4.0]
    assert requests == ["GET /api/current-user/whoami"] * 4


def test_a_server_that_keeps_failing_is_given_up_on_after_the_retries(pauses: list[float]) -> None:
    client, requests = client_answering([httpx.Response(500)], retries=2, backoff=0.5)
    with pytest.raises(StudioError) as error:
        whoami(client)()
    assert str(error.value) == f"Label Studio at {URL} failed while checking the API key (HTTP 500); gave up after 3 attempts"
    assert error.value.status == 500
    assert (len(requests), pauses) == (3, [0.5, 1.0])


@pytest.mark.parametrize(
    ("answer", "kind", "message"),
    [
        (httpx.Response(401, json={"detail": "bad token"}), StudioAuthError, f"Label Studio at {URL} rejected the API key (HTTP 401)"),
        (
            httpx.Response(400, json={"detail": "Validation error", "validation_errors": {"title": ["too long"]}}),
            StudioError,
            f'Label Studio at {URL} refused checking the API key (HTTP 400: {{"title":["too long"]}})',
        ),
        (httpx.Response(404, json={"detail": "Not found."}), StudioError, f"Label Studio at {URL} refused checking the API key (HTTP 404: Not found.)"),
    ],
    ids=["401", "400-validation", "404"],
)
def test_a_refusal_is_not_retried(pauses: list[float], answer: httpx.Response, kind: type[StudioError], message: str) -> None:
    client, requests = client_answering([answer])
    with pytest.raises(kind) as error:
        whoami(client)()
    assert str(error.value) == message
    assert (len(requests), pauses) == (1, [])


def test_a_connection_error_names_the_url(pauses: list[float]) -> None:
    client, _ = client_answering([httpx.ConnectError("[Errno 111] Connection refused")], retries=1)
    with pytest.raises(StudioConnectionError, match=rf"^cannot reach Label Studio at {URL} \(connection refused\); gave up after 2 attempts$"):
        whoami(client)()
    assert pauses == [1.0]


def test_the_key_is_masked_in_every_message(pauses: list[float]) -> None:
    client, _ = client_answering([httpx.RemoteProtocolError(f"peer closed the connection; we sent Authorization: Token {KEY}")], retries=0)
    assert client.redact(f"a {KEY} b {KEY}") == "a *** b ***"
    assert KEY not in repr(client)
    with pytest.raises(StudioConnectionError) as error:
        whoami(client)()
    assert KEY not in str(error.value) and "Token ***" in str(error.value)


def test_an_empty_secret_masks_nothing() -> None:
    client, _ = client_answering([ME])
    client._secret = ""
    assert client.redact("nothing to hide") == "nothing to hide"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"detail": "Validation error", "validation_errors": {"non_field_errors": ["Error at item 0"]}}, '{"non_field_errors":["Error at item 0"]}'),
        ({"detail": "Not found."}, "Not found."),
        ({"error": "boom"}, "boom"),
        ("<html>Bad Gateway</html>", "<html>Bad Gateway</html>"),
        ({"detail": "x" * 400}, "x" * 300),
    ],
    ids=["validation-errors-first", "detail", "error", "not-json", "cut-at-300"],
)
def test_the_detail_of_a_refusal(body: object, detail: str) -> None:
    assert studio._detail(body) == detail


@pytest.mark.parametrize(
    ("value", "versions"),
    [
        ("m-first,m-second", {"m-first", "m-second"}),  # SQLite
        ("m-first, m-second", {"m-first", "m-second"}),  # PostgreSQL
        ("m-first", {"m-first"}),
        ("", set()),
        (None, set()),
    ],
)
def test_model_versions_from_either_database(value: str | None, versions: set[str]) -> None:
    assert studio._model_versions(value) == frozenset(versions)


def test_a_nul_character_leaves_as_the_replacement_character() -> None:
    sentence = Sentence(
        article_id="a", sentence_id="a-1", paragraph=1, index=0, text="Odd \x00 byte.", lang="en", title="T\x00", source="x.txt", prev="", next="N\x00"
    )
    data = studio.task_data(sentence)
    assert (data["text"], data["title"], data["next"]) == ("Odd \ufffd byte.", "T\ufffd", "N\ufffd")
    assert data["sentence_id"] == "a-1"

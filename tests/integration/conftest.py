"""Real services for the integration tests, plus the tools to misbehave around them.

``studio_server`` (session scope) starts ``label-studio`` from its own virtual
environment (``.ci/install-label-studio``; ``ANNOTATE_LS_VENV`` overrides where)
on 127.0.0.1 with a fresh data dir, an admin user and a legacy token, once on
each database Label Studio supports in production use: SQLite and PostgreSQL.
Every test that uses it runs against both (``test_x[sqlite]``,
``test_x[postgresql]``). ``postgres`` is Debian's PostgreSQL
(``.ci/install-postgresql``; ``ANNOTATE_PG_BIN`` overrides where its programs
are), started on a free port with its own data folder as an unprivileged user.

``annotate_backend`` starts ``annotate serve`` processes (the ML backend) on
127.0.0.1 and stops them after the test; their log is printed under a failing test.

Locally the tests skip, with the reason, when a service is not installed;
where everything is required (CI, ``make test``; see ``tests/conftest.py``)
that fails them. The server's log is printed under every failing test that used it.

``fault_proxy`` is a TCP proxy on 127.0.0.1 that answers HTTP 500, holds,
drops, rewrites chosen requests or runs a hook while the server has them;
``chromium`` drives Debian's headless Chromium through
``--remote-debugging-pipe`` (no websocket client needed).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pwd
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..conftest import missing

LS_VENV = Path(os.environ.get("ANNOTATE_LS_VENV") or Path.home() / ".cache" / "annotate" / "label-studio-venv")
CHROMIUM = Path(os.environ.get("ANNOTATE_CHROMIUM", "/usr/bin/chromium"))
START_TIMEOUT = 240.0  # PostgreSQL's first start runs every migration: about a minute here, more on a busy machine
# The first test on each backend also waits for its servers to start.
INTEGRATION_TIMEOUT = 480
BACKENDS = ("sqlite", "postgresql")
# Access tokens the SDK gets for a Personal Access Token expire this fast (see studio_settings/).
ACCESS_TOKEN_SECONDS = 5
TOKEN_LEEWAY_SECONDS = 2
SETTINGS_DIR = Path(__file__).resolve().parent / "studio_settings"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs a real Label Studio server (tests/integration)")
    # label-studio-sdk 2.1.2 refreshes Personal Access Tokens with pydantic's
    # deprecated parse_obj; that is the SDK's business, not a failure of ours.
    config.addinivalue_line("filterwarnings", "ignore:The `parse_obj` method is deprecated:DeprecationWarning")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(INTEGRATION_TIMEOUT))


def free_port() -> int:
    """A port nobody listens on now; a server started on it must still check it got it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A port that refuses connections for as long as the block lasts: bound by us, never listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class PortTaken(RuntimeError):
    """Another process took the port between our choosing it and the server binding it."""


def _start_on_a_free_port(start: Callable[[], None], choose: Callable[[], None], attempts: int = 3) -> None:
    for attempt in range(attempts):
        try:
            start()
            return
        except PortTaken:
            if attempt == attempts - 1:
                raise
            choose()


def _stop_process_group(process: subprocess.Popen[bytes] | None, sig: int, grace: float) -> None:
    if process is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)


# --- PostgreSQL ------------------------------------------------------------------------


def postgres_bin() -> Path | None:
    """The folder with Debian's PostgreSQL programs (the newest version installed), or ``ANNOTATE_PG_BIN``."""
    if os.environ.get("ANNOTATE_PG_BIN"):
        return Path(os.environ["ANNOTATE_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


def server_account() -> pwd.struct_passwd:
    """Who runs the database server: PostgreSQL refuses to run as root, so root hands it to ``postgres``."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid())
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        missing("there is no 'postgres' user to run PostgreSQL as (it refuses root): run .ci/install-postgresql")
        raise


@dataclass
class PostgresServer:
    """One ``postgres`` process with its own data folder, listening on 127.0.0.1 only (no Unix socket)."""

    bin_dir: Path
    account: pwd.struct_passwd
    root: Path
    port: int = field(default_factory=free_port)
    user: str = "annotate"
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.root / "postgres.log"

    def _as_account(self) -> dict[str, Any]:
        return {"user": self.account.pw_uid, "group": self.account.pw_gid, "extra_groups": [], "cwd": self.root} if os.geteuid() == 0 else {"cwd": self.root}

    def init(self) -> None:
        os.chown(self.root, self.account.pw_uid, self.account.pw_gid)
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        os.chown(password_file, self.account.pw_uid, self.account.pw_gid)
        password_file.chmod(0o600)
        subprocess.run(
            [str(self.bin_dir / "initdb"), "-D", str(self.root / "data"), "-U", self.user, f"--pwfile={password_file}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True, capture_output=True, timeout=120, **self._as_account(),
        )  # fmt: skip
        password_file.unlink()

    def start(self, timeout: float = 60.0) -> None:
        # A throw-away database: durability settings off make Label Studio's migrations several times faster.
        command = [
            str(self.bin_dir / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port), "-h", "127.0.0.1", "-k", "",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
        ]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, **self._as_account()
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log_text = self.log_tail()
                self.process = None
                if "could not bind" in log_text or "Address already in use" in log_text:
                    raise PortTaken(log_text)
                raise RuntimeError(f"postgres exited before accepting connections\n{log_text}")
            ready = subprocess.run([str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"], check=False, timeout=30)
            if ready.returncode == 0:
                self.sql("SELECT 1")  # ours, with our password: not another server on a port taken since
                return
            time.sleep(0.2)
        raise RuntimeError(f"postgres did not accept connections within {timeout:.0f} s\n{self.log_tail()}")

    def sql(self, statement: str, database: str = "postgres") -> str:
        answer = subprocess.run(
            [str(self.bin_dir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", database, "-v", "ON_ERROR_STOP=1",
             "-At", "-c", statement],
            env={**os.environ, "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "10"}, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if answer.returncode != 0:
            raise RuntimeError(f"psql {statement!r}: {answer.stderr.strip()}")
        return answer.stdout.strip()

    def create_database(self, name: str) -> dict[str, str]:
        """A new empty database; returns the settings that point Label Studio at it."""
        self.sql(f'CREATE DATABASE "{name}"')
        return {
            "DJANGO_DB": "default",
            "POSTGRE_NAME": name,
            "POSTGRE_USER": self.user,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_HOST": "127.0.0.1",
            "POSTGRE_PORT": str(self.port),
        }

    def stop(self) -> None:
        """A fast shutdown (SIGINT: roll back open transactions, then exit)."""
        _stop_process_group(self.process, signal.SIGINT, 30.0)
        self.process = None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A running PostgreSQL, started once for the session when the first test on that backend needs it."""
    bin_dir = postgres_bin()
    if bin_dir is None or not (bin_dir / "postgres").exists():
        missing("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/postgres): run .ci/install-postgresql (or set ANNOTATE_PG_BIN)")
        raise AssertionError("unreachable")
    # Not under pytest's temporary folder: that is private to the user running the tests.
    root = Path(tempfile.mkdtemp(prefix="annotate-postgres-"))
    server = PostgresServer(bin_dir=bin_dir, account=server_account(), root=root)
    try:
        server.init()
        _start_on_a_free_port(server.start, lambda: setattr(server, "port", free_port()))
    except (RuntimeError, subprocess.SubprocessError) as e:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- Label Studio -------------------------------------------------------------------------


@dataclass
class Annotator:
    email: str
    password: str
    api_key: str
    user_id: int


@dataclass
class StudioServer:
    """One ``label-studio start`` process; ``stop``/``kill``/``restart`` keep data dir, database and port."""

    venv: Path
    data_dir: Path
    log_path: Path
    backend: str = "sqlite"
    database: dict[str, str] = field(default_factory=dict)  # Label Studio's settings for PostgreSQL
    port: int = field(default_factory=free_port)
    email: str = "admin@annotate.test"
    password: str = field(default_factory=lambda: "Pw-" + secrets.token_hex(8))
    api_key: str = field(default_factory=lambda: secrets.token_hex(20))
    process: subprocess.Popen[bytes] | None = None
    _log_start: int = 0
    _pat: str | None = None
    _annotators: dict[str, Annotator] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LABEL_STUDIO_", "DJANGO_", "POSTGRE_", "PG")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")
        }
        env.update(
            LABEL_STUDIO_BASE_DATA_DIR=str(self.data_dir),
            LATEST_VERSION_CHECK="false",
            LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
            COLLECT_ANALYTICS="false",
            # Label Studio refuses ML backend and webhook URLs on loopback and
            # private networks unless told otherwise; our backend runs on 127.0.0.1.
            USE_DEFAULT_BANNED_SUBNETS="false",
            SENTRY_DSN="",
            FRONTEND_SENTRY_DSN="",
        )
        env.update(self.database)
        env.update(
            PYTHONPATH=str(SETTINGS_DIR),
            DJANGO_SETTINGS_MODULE="annotate_studio_settings",
            ANNOTATE_TEST_ACCESS_TOKEN_SECONDS=str(ACCESS_TOKEN_SECONDS),
            ANNOTATE_TEST_TOKEN_LEEWAY_SECONDS=str(TOKEN_LEEWAY_SECONDS),
        )
        return env

    def start(self, timeout: float = START_TIMEOUT) -> None:
        command = [
            str(self.venv / "bin" / "label-studio"), "start", "--no-browser",
            "--internal-host", "127.0.0.1", "--port", str(self.port),
            "--username", self.email, "--password", self.password, "--user-token", self.api_key,
        ]  # fmt: skip
        if not _port_free(self.port):
            raise PortTaken(f"port {self.port} is in use")
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== starting label-studio ({self.backend}) on port {self.port} =====\n".encode())
            log.flush()
            self._log_start = log.tell()
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.environment(), start_new_session=True
            )
        try:
            self._wait_ready(timeout)
        except PortTaken:
            self.kill()
            raise

    def _new_log(self) -> str:
        with open(self.log_path, "rb") as log:
            log.seek(self._log_start)
            return log.read().decode("utf-8", errors="replace")

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5.0) as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"label-studio exited with code {self.process.returncode} before answering\n{self.log_tail()}")
                # A busy port makes label-studio quietly take the next one.
                if f"Port {self.port} is in use" in self._new_log():
                    raise PortTaken(f"port {self.port} was taken before label-studio started")
                try:
                    health = http.get(f"{self.url}/health")
                except httpx.TransportError:
                    time.sleep(0.5)
                    continue
                if health.status_code != 200:
                    time.sleep(0.5)
                    continue
                # Check that what answers here is our server with our user.
                me = http.get(f"{self.url}/api/current-user/whoami", headers={"Authorization": f"Token {self.api_key}"})
                if me.status_code == 200 and me.json().get("email") == self.email:
                    return
                raise PortTaken(f"port {self.port} is answered by another server (whoami: HTTP {me.status_code})")
        raise RuntimeError(f"label-studio did not answer /health within {timeout:.0f} s\n{self.log_tail()}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """Stop the server politely (SIGTERM, then SIGKILL after 20 s)."""
        _stop_process_group(self.process, signal.SIGTERM, 20.0)
        self.process = None

    def kill(self) -> None:
        """Crash the server (SIGKILL): what a power cut or OOM kill does."""
        _stop_process_group(self.process, signal.SIGKILL, 10.0)
        self.process = None

    def restart(self, timeout: float = START_TIMEOUT) -> None:
        """Start again on the same data dir, database and port (stopping it first if it runs)."""
        if self.running:
            self.stop()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _port_free(self.port):
            time.sleep(0.5)
        self.start(timeout)

    def ensure_running(self) -> None:
        if not self.running:
            self.restart()

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    # -- users and keys ---------------------------------------------------------------

    def _form(self, session: httpx.Client, path: str, data: dict[str, str]) -> httpx.Response:
        page = session.get(path)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, f"no CSRF token on {path}"
        return session.post(path, data={"csrfmiddlewaretoken": token.group(1), **data}, headers={"Referer": f"{self.url}{path}"})

    def login(self, email: str | None = None, password: str | None = None) -> dict[str, str]:
        """Log in through the web form; return the session cookies (for a browser)."""
        with httpx.Client(base_url=self.url, timeout=30.0) as session:
            answer = self._form(session, "/user/login/", {"email": email or self.email, "password": password or self.password})
            assert answer.status_code == 302, f"login failed: HTTP {answer.status_code}"
            return dict(session.cookies.items())

    def create_annotator(self, name: str) -> Annotator:
        """A new user in the organisation, signed up as a person would, with their own legacy token."""
        if name in self._annotators:
            return self._annotators[name]
        email, password = f"{name}@annotate.test", "Pw-" + secrets.token_hex(8)
        with httpx.Client(base_url=self.url, timeout=30.0) as session:
            answer = self._form(
                session, "/user/signup/", {"email": email, "password": password, "how_find_us": "Other", "elaborate": "tests"}
            )
            assert answer.status_code == 302, f"signup of {email} failed: HTTP {answer.status_code}"
            token = session.get("/api/current-user/token")
            me = session.get("/api/current-user/whoami")
            assert token.status_code == 200 and me.status_code == 200, (token.status_code, me.status_code)
            annotator = Annotator(email, password, token.json()["token"], int(me.json()["id"]))
        self._annotators[name] = annotator
        return annotator

    def personal_access_token(self) -> str:
        """The admin's Personal Access Token (a JWT refresh token), made once with POST /api/token/."""
        if self._pat is None:
            answer = httpx.post(f"{self.url}/api/token/", headers={"Authorization": f"Token {self.api_key}"}, timeout=30.0)
            assert answer.status_code == 201, f"cannot create a PAT: HTTP {answer.status_code} {answer.text[:200]}"
            self._pat = answer.json()["token"]
        return self._pat


@pytest.fixture(scope="session", params=BACKENDS)
def studio_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StudioServer]:
    """A running Label Studio on each backend in turn; tests that stop it must leave it running (``ensure_running``)."""
    if not (LS_VENV / "bin" / "label-studio").exists():
        missing(f"Label Studio is not installed in {LS_VENV}: run .ci/install-label-studio (or set ANNOTATE_LS_VENV)")
    backend = request.param
    database: dict[str, str] = {}
    if backend == "postgresql":
        database = request.getfixturevalue("postgres").create_database(f"label_studio_{secrets.token_hex(4)}")
    root = tmp_path_factory.mktemp(f"label-studio-{backend}")
    server = StudioServer(venv=LS_VENV, data_dir=root / "data", log_path=root / "label-studio.log", backend=backend, database=database)
    try:
        _start_on_a_free_port(server.start, lambda: setattr(server, "port", free_port()))
    except RuntimeError as e:
        server.kill()
        pytest.fail(f"Label Studio on {backend} did not start: {e}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    server = getattr(item, "funcargs", {}).get("studio_server")
    if report.failed and isinstance(server, StudioServer):
        report.sections.append((f"label-studio ({server.backend}) log (last 80 lines)", server.log_tail()))
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if report.failed and "annotate_backend" in getattr(item, "funcargs", {}) and tmp is not None:
        for log in sorted(Path(str(tmp)).glob("backend-*.log")):
            text = log.read_text(encoding="utf-8", errors="replace").splitlines()[-60:]
            report.sections.append((f"annotate serve log {log.name} (last 60 lines)", "\n".join(text)))
    return report


# --- the ML backend -------------------------------------------------------------------


@dataclass
class BackendServer:
    """One ``annotate serve`` process on 127.0.0.1 with basic auth (unless ``--no-auth`` is in ``args``)."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    user: str = "label-studio"
    password: str = field(default_factory=lambda: "Pw-" + secrets.token_hex(12))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth(self) -> tuple[str, str]:
        return self.user, self.password

    def start(self, timeout: float = 120.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LABEL_STUDIO_", "ANNOTATE_BACKEND_"))}
        env.update(ANNOTATE_BACKEND_USER=self.user, ANNOTATE_BACKEND_PASSWORD=self.password, **self.env)
        command = [str(Path(sys.executable).parent / "annotate"), "serve", "--port", str(self.port), *self.args]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"annotate serve exited with code {self.process.returncode}\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", auth=self.auth, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"annotate serve did not answer /health within {timeout:.0f} s\n{self.log_tail()}")

    def health(self) -> dict[str, Any]:
        answer = httpx.get(f"{self.url}/health", auth=self.auth, timeout=10)
        answer.raise_for_status()
        return dict(answer.json())

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@pytest.fixture
def annotate_backend(tmp_path: Path) -> Iterator[Callable[..., BackendServer]]:
    """``annotate_backend(*args, env={...})`` starts ``annotate serve ARGS`` and returns it running."""
    started: list[BackendServer] = []

    def start(*args: str, env: dict[str, str] | None = None) -> BackendServer:
        server = BackendServer(list(args), env or {}, tmp_path / f"backend-{len(started)}.log")
        started.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


# --- a misbehaving network -----------------------------------------------------------


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    action: str
    times: int
    rewrite: Callable[[bytes], bytes] | None = None
    hook: Callable[[], None] | None = None


@dataclass(frozen=True)
class Hit:
    method: str
    path: str
    action: str
    at: float  # time.monotonic() when the request arrived


class FaultProxy:
    """HTTP-aware TCP proxy on 127.0.0.1 in front of the server, one request per upstream connection.

    ``add("POST", r"/import", "500", times=1)`` gives the next matching request
    an action:

    - ``500``: answered with HTTP 500 and not forwarded;
    - ``drop-before``: the connection is closed without forwarding;
    - ``drop-after``: forwarded (the server acts on it), closed without answering;
    - ``hold``: forwarded, and the answer held until the client gives up and
      hangs up (a server slower than the client's timeout, without a timer);
    - ``rewrite``: the body is passed through ``rewrite`` before it is forwarded,
      so the server's own answer to a bad request comes back;
    - ``hook``: forwarded, then ``hook()`` runs while the server has the request
      (e.g. to kill it), then whatever the server sends is passed on;
    - ``forward``: passed on untouched (to let the first matching requests through).

    Every request is recorded in ``hits`` with the time it arrived.
    """

    HOLD_LIMIT = 120.0

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.faults: list[Fault] = []
        self.hits: list[Hit] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        self._sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._serve, name="fault-proxy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add(
        self,
        method: str,
        path: str,
        action: str,
        *,
        times: int = 1,
        rewrite: Callable[[bytes], bytes] | None = None,
        hook: Callable[[], None] | None = None,
    ) -> None:
        assert action in ("500", "drop-before", "drop-after", "hold", "rewrite", "hook", "forward"), action
        with self._lock:
            self.faults.append(Fault(method, re.compile(path), action, times, rewrite, hook))

    def clear(self) -> None:
        with self._lock:
            self.faults.clear()

    def matching(self, method: str, path: str, action: str | None = None) -> list[Hit]:
        pattern = re.compile(path)
        with self._lock:
            return [hit for hit in self.hits if hit.method == method and pattern.search(hit.path) and (action is None or hit.action == action)]

    def count(self, method: str, path: str, action: str | None = None) -> int:
        return len(self.matching(method, path, action))

    def _serve(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._sockets.add(client)
            threading.Thread(target=self._handle, args=(client,), daemon=True).start()

    def _pick(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path.search(path):
                    fault.times -= 1
                    return fault
        return None

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(60)
        buffer = b""
        try:
            while b"\r\n\r\n" not in buffer:
                chunk = client.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            headers = [line for line in lines[1:] if not line.lower().startswith("connection:")]
            length = next((int(h.split(":", 1)[1]) for h in headers if h.lower().startswith("content-length:")), 0)
            while len(buffer) < length:
                chunk = client.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            body = buffer[:length]
            fault = self._pick(method, path)
            with self._lock:
                self.hits.append(Hit(method, path, fault.action if fault else "forward", time.monotonic()))
            action = fault.action if fault else "forward"
            if action == "500":
                text = json.dumps({"detail": "injected HTTP 500"}).encode()
                client.sendall(
                    f"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\nContent-Length: {len(text)}\r\n"
                    "Connection: close\r\n\r\n".encode()
                    + text
                )
                return
            if action == "drop-before":
                return
            if fault is not None and fault.rewrite is not None:
                body = fault.rewrite(body)
                headers = [h for h in headers if not h.lower().startswith("content-length:")] + [f"Content-Length: {len(body)}"]
            request = "\r\n".join([lines[0], *headers, "Connection: close"]).encode() + b"\r\n\r\n" + body
            answer = self._forward(request, fault.hook if fault else None)
            if action == "drop-after":
                return
            if action == "hold":
                self._wait_for_hang_up(client)
                return
            client.sendall(answer)
        except OSError:
            return
        finally:
            self._sockets.discard(client)
            with contextlib.suppress(OSError):
                client.shutdown(socket.SHUT_RDWR)
            client.close()

    def _wait_for_hang_up(self, client: socket.socket) -> None:
        deadline = time.monotonic() + self.HOLD_LIMIT
        while not self._closed and time.monotonic() < deadline:
            readable, _, _ = select.select([client], [], [], 1.0)
            if readable and not client.recv(65536):
                return

    def _forward(self, request: bytes, hook: Callable[[], None] | None) -> bytes:
        with socket.create_connection(("127.0.0.1", self.upstream_port), timeout=120) as upstream:
            upstream.sendall(request)
            if hook is not None:
                hook()
            chunks = []
            with contextlib.suppress(ConnectionResetError):
                while chunk := upstream.recv(65536):
                    chunks.append(chunk)
        head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
        kept = [line for line in head.split(b"\r\n") if not line.lower().startswith((b"connection:", b"keep-alive:"))]
        return b"\r\n".join([*kept, b"Connection: close"]) + b"\r\n\r\n" + body if chunks else b""

    def close(self) -> None:
        self._closed = True
        # shutdown() wakes the thread blocked in accept(); close() alone would not.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for sock in list(self._sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)


@pytest.fixture
def fault_proxy(studio_server: StudioServer) -> Iterator[FaultProxy]:
    proxy = FaultProxy(studio_server.port)
    try:
        yield proxy
    finally:
        proxy.close()


# --- a headless browser --------------------------------------------------------------


_DUMP_DOM = r"""
(function dump(node) {
  if (node.nodeType === Node.TEXT_NODE) return node.textContent.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  if (node.nodeType !== Node.ELEMENT_NODE) return "";
  const tag = node.tagName.toLowerCase();
  const attrs = [...node.attributes].map(a => ` ${a.name}="${a.value.replace(/"/g, "&quot;")}"`).join("");
  const shadow = node.shadowRoot ? `<template shadowrootmode="open">${[...node.shadowRoot.childNodes].map(dump).join("")}</template>` : "";
  const frame = tag === "iframe" && node.contentDocument ? dump(node.contentDocument.documentElement) : "";
  return `<${tag}${attrs}>${shadow}${frame}${[...node.childNodes].map(dump).join("")}</${tag}>`;
})(document.documentElement)
"""


class Chromium:
    """Headless Chromium spoken to over the DevTools pipe (fds 3 and 4 in the child)."""

    def __init__(self, user_data_dir: Path, binary: Path = CHROMIUM) -> None:
        to_child, self._to_chromium = os.pipe()
        self._from_chromium, from_child = os.pipe()
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "--window-size=1280,900", "about:blank",
        ]  # fmt: skip
        # --remote-debugging-pipe talks on fds 3 and 4; bash moves our pipe ends
        # there (no preexec_fn, which is unsafe in a process with threads).
        remap = 'exec 3<&"$1" 4>&"$2"; shift 2; exec "$@"'
        self.process = subprocess.Popen(
            ["bash", "-c", remap, "chromium", str(to_child), str(from_child), str(binary), *flags],
            pass_fds=(to_child, from_child),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None

    def send(self, method: str, params: dict[str, Any] | None = None, *, page: bool = True, timeout: float = 30.0) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if page and self._session:
            message["sessionId"] = self._session
        os.write(self._to_chromium, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            while b"\0" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self._from_chromium], [], [], left)[0]:
                    raise TimeoutError(f"chromium did not answer {method} within {timeout:.0f} s")
                chunk = os.read(self._from_chromium, 1 << 20)
                if not chunk:
                    raise EOFError("chromium closed the DevTools pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))

    def open_page(self, cookies: dict[str, str], domain: str = "127.0.0.1") -> None:
        self.send(
            "Storage.setCookies",
            {"cookies": [{"name": k, "value": v, "domain": domain, "path": "/"} for k, v in cookies.items()]},
            page=False,
        )
        targets = self.send("Target.getTargets", page=False)["targetInfos"]
        target = next(t for t in targets if t["type"] == "page")
        self._session = self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, page=False)["sessionId"]
        self.send("Page.enable")

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})["result"].get("value")

    def wait_for_text(self, needles: list[str], timeout: float = 90.0) -> str:
        deadline = time.monotonic() + timeout
        text = ""
        while time.monotonic() < deadline:
            text = self.evaluate("document.body ? document.body.innerText : ''") or ""
            if all(needle in text for needle in needles):
                return str(text)
            time.sleep(0.5)
        return str(text)

    def dom(self) -> str:
        """The page's DOM as HTML, open shadow roots included (Label Studio renders into some)."""
        return str(self.evaluate(_DUMP_DOM) or "")

    def screenshot(self, path: Path) -> None:
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", {"format": "png"})["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.send("Browser.close", page=False, timeout=5)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        os.close(self._to_chromium)
        os.close(self._from_chromium)


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Chromium]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        missing(f"{CHROMIUM} is not installed: run .ci/install-chromium")
    browser = Chromium(tmp_path / "chromium-profile")
    try:
        yield browser
    finally:
        browser.close()


# Clients the tests open, closed after each test.
_OPEN: list[Any] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def sdk(server: StudioServer, api_key: str | None = None) -> Any:
    """The bare SDK (a ``LabelStudio``), to play the annotators and to check the server's state."""
    from label_studio_sdk import LabelStudio

    http = httpx.Client(timeout=120.0, follow_redirects=True)
    _OPEN.append(http)
    return LabelStudio(base_url=server.url, api_key=api_key or server.api_key, httpx_client=http)


def open_client(url: str, api_key: str, **kwargs: Any) -> Any:
    """A toolkit ``StudioClient``, closed after the test."""
    from annotate import studio

    client = studio.connect(url, api_key, **kwargs)
    _OPEN.append(client)
    return client

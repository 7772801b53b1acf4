"""Shared fixtures: a real uvicorn server in a background thread, signed requests, subprocesses."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx2
import pytest
import uvicorn

from twilio_events.testing import sign

TOKEN = "test-auth-token"
"""The auth token every test app is built with unless a test says otherwise."""

FORM = "application/x-www-form-urlencoded"
DEADLINE = 15.0
"""Seconds to wait for a server or subprocess before failing the test (a timeout, never an assertion)."""

Pairs = Mapping[str, str] | Iterable[tuple[str, str]]


@pytest.fixture(autouse=True)
def _clean_twilio_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see the developer's real Twilio credentials or settings."""
    for name in (
        "TWILIO_AUTH_TOKEN",
        "TWILIO_SECONDARY_AUTH_TOKEN",
        "TWILIO_ACCOUNT_SID",
        "TWILIO_EVENTS_VALIDATE_SIGNATURE",
        "TWILIO_EVENTS_SHARED_KEYS",
        "TWILIO_EVENTS_BASIC_AUTH",
        "TWILIO_EVENTS_DIGEST_AUTH",
        "TWILIO_EVENTS_READ_TIMEOUT",
        "TWILIO_EVENTS_MAX_CONNECTIONS",
        "TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT",
        "TWILIO_EVENTS_WORKERS",
    ):
        monkeypatch.delenv(name, raising=False)


def pairs_of(params: Pairs) -> list[tuple[str, str]]:
    """A payload as an ordered list of (name, value) pairs, keeping repeated names."""
    return list(params.items()) if isinstance(params, Mapping) else list(params)


def encode_form(params: Pairs) -> bytes:
    """The body Twilio posts: the parameters form-encoded in order."""
    return urlencode(pairs_of(params)).encode("ascii")


class LiveServer:
    """A running uvicorn server on 127.0.0.1 and an httpx2 client for it."""

    def __init__(self, server: uvicorn.Server, port: int) -> None:
        self.server = server
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.http = httpx2.Client(timeout=DEADLINE)

    def url(self, target: str = "/") -> str:
        """The URL of `target` (a path, with any query) on this server, as the client sends it."""
        return self.base_url + target

    def callback(
        self,
        params: Pairs,
        target: str = "/",
        *,
        token: str = TOKEN,
        signed_url: str | None = None,
        signature: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        """POST `params` form-encoded to `target`, signed like Twilio for `signed_url` (default: the URL)."""
        pairs = pairs_of(params)
        if signature is None:
            signature = sign(signed_url or self.url(target), pairs, token)
        all_headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
        all_headers.update(headers or {})
        return self.http.post(self.url(target), content=encode_form(pairs), headers=all_headers)

    def request(self, method: str, target: str = "/", **kwargs: Any) -> httpx2.Response:
        """Any request, unsigned unless the caller adds the header."""
        return self.http.request(method, self.url(target), **kwargs)

    def close(self) -> None:
        self.http.close()


def wait_for(condition: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
    """Poll `condition` until it holds; fail the test, saying what never happened, after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


class ServerThread:
    """A real uvicorn server for `app` on a free 127.0.0.1 port, run in a background thread."""

    def __init__(
        self,
        app: Any,
        *,
        lifespan: str = "off",
        config_type: Callable[..., uvicorn.Config] = uvicorn.Config,
        **config: Any,
    ) -> None:
        options: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": 0,
            "lifespan": lifespan,
            "log_config": None,  # leave logging (and pytest's caplog) alone
            "access_log": False,
            "ws": "none",
        }
        self.server = uvicorn.Server(config_type(app, **(options | config)))
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="uvicorn-test-server", daemon=True)

    def _run(self) -> None:
        try:
            self.server.run()
        except BaseException as exc:  # reported by stop()
            self.errors.append(exc)

    def start(self) -> LiveServer:
        server, thread = self.server, self.thread
        thread.start()
        wait_for(lambda: server.started or bool(self.errors) or not thread.is_alive(), "uvicorn to start")
        if not server.started:
            thread.join(DEADLINE)
            pytest.fail(f"uvicorn did not start: {self.errors!r}")
        return LiveServer(server, server.servers[0].sockets[0].getsockname()[1])

    def request_stop(self) -> None:
        """Ask uvicorn to shut down (gracefully, as on SIGTERM) without waiting for it."""
        self.server.should_exit = True

    def stop(self) -> None:
        """Shut down and check the server stopped cleanly."""
        self.request_stop()
        self.thread.join(DEADLINE)
        assert not self.thread.is_alive(), "uvicorn did not stop"
        assert not self.errors, self.errors


@contextlib.contextmanager
def running(app: Any, *, lifespan: str = "off", **config: Any) -> Iterator[LiveServer]:
    """Serve `app` with a real uvicorn server for the duration of the block."""
    thread = ServerThread(app, lifespan=lifespan, **config)
    live = thread.start()
    try:
        yield live
    finally:
        live.close()
        thread.stop()


@pytest.fixture(scope="session")
def _stopping_servers() -> Iterator[list[ServerThread]]:
    """Servers of finished tests shut down while later tests run; all must have stopped by the end."""
    stopping: list[ServerThread] = []
    yield stopping
    for thread in stopping:
        thread.stop()


@pytest.fixture
def serve(_stopping_servers: list[ServerThread]) -> Iterator[Callable[..., LiveServer]]:
    """`serve(app, **uvicorn_config)` runs the app on a real uvicorn server for this test (`config_type=`
    another `uvicorn.Config` class, such as twilio_events' own ServingConfig)."""
    started: list[tuple[ServerThread, LiveServer]] = []

    def start(app: Any, **config: Any) -> LiveServer:
        thread = ServerThread(app, **config)
        live = thread.start()
        started.append((thread, live))
        return live

    yield start
    for thread, live in started:
        live.close()
        thread.request_stop()
        _stopping_servers.append(thread)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    """The console script failed with exit code 1 and one `twilio-events: error:` line holding `expected`."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("twilio-events: error: "), result.stderr
    for text in expected:
        assert text in lines[0]


class Process:
    """A Python subprocess whose stderr goes to a file the test can read while it runs."""

    def __init__(self, args: list[str], cwd: Path, env: Mapping[str, str]) -> None:
        self.stderr_path = cwd / "stderr.log"
        self.stdout_path = cwd / "stdout.log"
        with self.stderr_path.open("wb") as stderr, self.stdout_path.open("wb") as stdout:
            self.popen = subprocess.Popen(
                [sys.executable, *args], cwd=cwd, env={**os.environ, **env}, stdout=stdout, stderr=stderr
            )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    def wait_for_stderr(self, text: str, count: int = 1) -> None:
        """Wait until `text` appears `count` times in stderr; fail, with the log, if the process dies."""

        def seen() -> bool:
            if self.stderr.count(text) >= count:
                return True
            if self.popen.poll() is not None:
                pytest.fail(f"process exited ({self.popen.returncode}) before {text!r}:\n{self.stderr}")
            return False

        wait_for(seen, f"{text!r} in the subprocess's stderr:\n{self.stderr}")

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"process did not exit in time:\n{self.stderr}")

    def terminate(self) -> None:
        self.popen.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(DEADLINE)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """`spawn(args, env)` starts `python *args` in tmp_path; it is always killed at the end of the test."""
    processes: list[Process] = []

    def start(args: list[str], env: Mapping[str, str] | None = None) -> Process:
        process = Process(args, tmp_path, env or {})
        processes.append(process)
        return process

    yield start
    for process in processes:
        process.kill()

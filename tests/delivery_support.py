"""What the delivery tests share: a real redis-server, service processes, their records, a load client.

The service is tests/apps/durable_app.py, run with `python` in its own process and configured by
environment variables; each handler run leaves "start KEY PID" and "done KEY PID" lines in a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx2
import pytest
import redis

from twilio_events.payloads import Payload, sign

from .conftest import DEADLINE, FORM, TOKEN, free_port, wait_for

APP_SCRIPT = Path(__file__).parent / "apps" / "durable_app.py"
PUBLIC_URL = "https://events.example.test/"
"""The URL the service processes validate signatures for, as behind a load balancer: one for all ports."""


# A real redis-server (also for tests/test_stores.py and tests/test_cli_inbox.py)


@dataclass
class RedisServer:
    """A redis-server on 127.0.0.1 that appends every write to disk with fsync before answering.

    `start()` starts it, and starts it again after `stop()` on the same port and files; `stop(sig)` sends
    `sig` (SIGTERM unless told) and SIGKILLs it if it has not exited within DEADLINE s.
    """

    directory: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it (again, on the same port and files) and wait until it answers."""
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: install it with `apt-get install -y redis-server` "
                "(these tests start their own)"
            )
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.directory)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + DEADLINE
        while True:
            try:
                with redis.Redis(port=self.port, socket_timeout=1) as client:
                    client.ping()
                return self
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.02)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
        try:
            process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(DEADLINE)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A fresh redis-server for the block, stopped at its end whatever happens."""
    directory.mkdir(parents=True, exist_ok=True)
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Records of handler runs


@dataclass(frozen=True)
class Record:
    what: str
    key: str
    pid: int


def read_records(*paths: Path) -> list[Record]:
    """Every complete line of the handlers' record files (a line cut short by SIGKILL is left out)."""
    records = []
    for path in paths:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines(keepends=True):
            if line.endswith("\n"):
                what, key, pid = line.split()
                records.append(Record(what, key, int(pid)))
    return records


def counts(records: Sequence[Record], what: str) -> Counter[str]:
    """How many `what` lines ("start", "done") each key has."""
    return Counter(record.key for record in records if record.what == what)


# The service in a process


class AppProcess:
    """tests/apps/durable_app.py in a process of its own, on a free port of 127.0.0.1."""

    def __init__(self, directory: Path, env: Mapping[str, str], *, name: str = "app") -> None:
        self.directory = directory
        self.name = name
        self.port = free_port()
        self.log = directory / f"{name}.records"
        self.stderr_path = directory / f"{name}.stderr"
        self.env = {
            "DURABLE_APP_PORT": str(self.port),
            "DURABLE_APP_LOG": str(self.log),
            "DURABLE_APP_AUTH_TOKEN": TOKEN,
            "DURABLE_APP_PUBLIC_URL": PUBLIC_URL,
            # a consumer name of its own: started again, it takes back what it held whatever else runs here
            "DURABLE_APP_CONSUMER": f"{name}-{uuid.uuid4().hex[:8]}",
            **env,
        }
        self.popen: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8", errors="replace")

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def start(self) -> AppProcess:
        """Start the service (again: same port, store and record file) and wait until it answers."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "DURABLE_APP_"))}
        with self.stderr_path.open("ab") as stderr:
            self.popen = subprocess.Popen(
                [sys.executable, str(APP_SCRIPT)],
                cwd=self.directory,
                env={**clean, **self.env},
                stdout=stderr,
                stderr=stderr,
            )
        wait_for(self._answers, f"{self.name} to answer on port {self.port}")
        return self

    def _answers(self) -> bool:
        assert self.popen is not None
        if self.popen.poll() is not None:
            pytest.fail(f"{self.name} exited ({self.popen.returncode}) before answering:\n{self.stderr}")
        try:
            return httpx2.get(self.base_url + "/health", timeout=1).status_code in (200, 503)
        except httpx2.TransportError:
            return False

    def health(self) -> dict[str, Any]:
        response = httpx2.get(self.base_url + "/health", timeout=DEADLINE)
        body: dict[str, Any] = response.json()
        body["http_status"] = response.status_code
        return body

    def records(self) -> list[Record]:
        return read_records(self.log)

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish anything."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
        self.wait()

    def terminate(self) -> None:
        """SIGTERM, as a process manager stops a service."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = DEADLINE) -> int:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(DEADLINE)
            pytest.fail(f"{self.name} did not exit within {timeout:g} s:\n{self.stderr}")

    def stop(self) -> None:
        """However the test went: gone at the end."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(DEADLINE)


@contextlib.contextmanager
def app_processes(directory: Path) -> Iterator[Callable[..., AppProcess]]:
    """`make(env, name=...)` makes (does not start) a service process; all are killed at the end."""
    made: list[AppProcess] = []

    def make(env: Mapping[str, str] | None = None, *, name: str = "app") -> AppProcess:
        process = AppProcess(directory, env or {}, name=name)
        made.append(process)
        return process

    try:
        yield make
    finally:
        for process in made:
            process.stop()


# Signed callbacks over raw HTTP/1.1 connections


def signed_request(payload: Payload, *, token: str = TOKEN, public_url: str = PUBLIC_URL) -> bytes:
    """One keep-alive POST of `payload` to /, form-encoded and signed for `public_url` as Twilio would
    (with `public_url`'s host in the Host header, as a proxy in front of the service would keep it)."""
    body = urlencode(list(payload.items())).encode("ascii")
    head = (
        f"POST / HTTP/1.1\r\nHost: {urlsplit(public_url).netloc}\r\nContent-Type: {FORM}\r\n"
        "User-Agent: TwilioProxy/1.1\r\n"
        f"X-Twilio-Signature: {sign(public_url, payload, token)}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """Send one request and read its whole response: (status, whether the server keeps the connection)."""
    writer.write(request)
    await writer.drain()
    status_line = await reader.readuntil(b"\r\n")
    status = int(status_line.split()[1])
    length, keep = 0, True
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "connection" and value.strip().lower() == "close":
            keep = False
    await reader.readexactly(length)
    return status, keep


async def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def _send_all(
    requests: Sequence[bytes],
    targets: list[int],
    concurrency: int,
    timeout: float,
    on_answer: Callable[[int], None] | None,
) -> list[int | None]:
    answers: list[int | None] = [None] * len(requests)
    pending = iter(range(len(requests)))

    async def connection(number: int) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            for index in pending:
                try:
                    if reader is None or writer is None:
                        port = targets[number % len(targets)]
                        connecting = asyncio.open_connection("127.0.0.1", port)
                        reader, writer = await asyncio.wait_for(connecting, timeout)
                    exchange = _exchange(reader, writer, requests[index])
                    status, keep = await asyncio.wait_for(exchange, timeout)
                except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                    # no answer: the callback was not acknowledged (the sender would try it again later)
                    status, keep = None, False
                answers[index] = status
                if status is not None and on_answer is not None:
                    on_answer(index)
                if not keep:
                    await _close(writer)
                    reader = writer = None
        finally:
            await _close(writer)

    await asyncio.gather(*(connection(n) for n in range(concurrency)))
    return answers


def send_all(
    requests: Sequence[bytes],
    targets: list[int],
    *,
    concurrency: int,
    timeout: float = DEADLINE,
    total: float = 60.0,
    on_answer: Callable[[int], None] | None = None,
) -> list[int | None]:
    """POST every request over `concurrency` keep-alive connections, connection n to targets[n % len]
    (read again at each reconnection, so a test may drop a port from `targets` while this runs).

    The status of each answer, in the order of `requests`, None where there was none (refused, reset, no
    answer within `timeout` s); `on_answer(index)` is called, in the event loop, as each answer arrives.
    Fails the test if the whole takes more than `total` s.
    """

    async def bounded() -> list[int | None]:
        try:
            return await asyncio.wait_for(
                _send_all(requests, targets, concurrency, timeout, on_answer), total
            )
        except TimeoutError:
            pytest.fail(f"sending {len(requests)} callbacks took more than {total:g} s")

    return asyncio.run(bounded())

"""What one client can hold of a served process: the read deadline, the connection cap, keep-alive.

`twilio-events run` processes (the way users serve) and in-process servers on both of uvicorn's parsers,
reached over raw sockets. Times are only asserted as generous bounds: "closed within the deadline + 2 s".
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twilio_events import CallEvent, CallStatus, TwilioEvents
from twilio_events.capacity import ConnectionCap
from twilio_events.connections import ServingConfig
from twilio_events.limits import ServerLimits
from twilio_events.testing import call_payload

from .conftest import DEADLINE, FORM, TOKEN, LiveServer, Process, free_port, wait_for
from .raw_http import (
    connect,
    exchange,
    is_open,
    read_response,
    request_bytes,
    seconds_until_closed,
    signed_callback,
)

SLACK = 2.0
"""Seconds a connection may outlive its deadline on a busy machine."""

APP = """
from twilio_events import TwilioEvents

app = TwilioEvents()


@app.call.on_ringing
def ringing(event):
    print("handled ringing", event.call_sid, flush=True)
"""

STALLED_HEAD = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + FORM.encode()
STALLED_BODY = (
    b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    b"X-Twilio-Signature: x\r\nContent-Length: 500\r\n\r\nCallSid=CA"
)


MOUNTED_APP = """
from starlette.applications import Starlette
from starlette.routing import Mount

from twilio_events import TwilioEvents

events = TwilioEvents()
app = Starlette(routes=[Mount("/twilio", app=events)], lifespan=events.lifespan)
"""


def run_service(
    spawn: Callable[..., Process], tmp_path: Path, source: str = APP, **env: str
) -> tuple[Process, int]:
    """`twilio-events run app.py` on a free port, with the given environment, serving."""
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    port = free_port()
    process = spawn(
        ["-m", "twilio_events", "run", "app.py", "--host", "127.0.0.1", "--port", str(port)],
        {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "", "TWILIO_EVENTS_VALIDATE_SIGNATURE": "", **env},
    )
    process.wait_for_stderr("connection limits:")
    wait_for(lambda: _accepting(port), f"port {port}")
    return process, port


def _accepting(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def ringing() -> list[tuple[str, str]]:
    return list(call_payload(CallStatus.RINGING).items())


def test_silent_stalled_and_trickling_clients_are_disconnected_while_callbacks_are_answered(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    process, port = run_service(spawn, tmp_path, TWILIO_EVENTS_READ_TIMEOUT="2")
    opened = time.monotonic()
    silent = connect(port)
    stalled_head = connect(port)
    stalled_head.sendall(STALLED_HEAD)
    stalled_body = connect(port)
    stalled_body.sendall(STALLED_BODY)

    answer = exchange(port, signed_callback(port, ringing()))

    assert answer.status == 200
    assert all(is_open(sock) for sock in (silent, stalled_head, stalled_body)), "closed before the deadline"
    for sock in (silent, stalled_head, stalled_body):
        assert seconds_until_closed(sock, opened) <= 2 + SLACK
        sock.close()
    process.wait_for_stderr("no whole request within 2 s (read_timeout)", count=3)
    assert "handled ringing" in process.stdout_path.read_text()
    assert "Traceback" not in process.stderr


def test_an_app_that_mounts_twilio_events_is_served_with_the_limits_of_the_environment(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    process, port = run_service(
        spawn, tmp_path, MOUNTED_APP, TWILIO_EVENTS_READ_TIMEOUT="1", TWILIO_EVENTS_MAX_CONNECTIONS="50"
    )
    process.wait_for_stderr("each request must arrive within 1 s, at most 50 connections at once")

    with connect(port) as silent:
        assert seconds_until_closed(silent, time.monotonic()) <= 1 + SLACK


def test_a_trickled_head_does_not_move_the_deadline(spawn: Callable[..., Process], tmp_path: Path) -> None:
    _, port = run_service(spawn, tmp_path, TWILIO_EVENTS_READ_TIMEOUT="1")
    with connect(port) as sock:
        opened = time.monotonic()
        for byte in b"POST / HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 200:
            if not is_open(sock):
                break
            try:
                sock.send(bytes([byte]))
            except OSError:
                break
            time.sleep(0.05)
        assert seconds_until_closed(sock, opened) <= 1 + SLACK


def test_connections_beyond_the_cap_are_refused_and_logged(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    process, port = run_service(
        spawn, tmp_path, TWILIO_EVENTS_MAX_CONNECTIONS="3", TWILIO_EVENTS_READ_TIMEOUT="60"
    )
    held = [connect(port) for _ in range(3)]
    wait_for(lambda: all(is_open(sock) for sock in held), "three connections held")

    with connect(port) as refused:
        try:
            answer = refused.recv(4096)
        except ConnectionResetError:
            answer = b""
        assert answer == b"" or answer.startswith(b"HTTP/1.1 503 "), answer
        assert seconds_until_closed(refused, time.monotonic()) <= SLACK
    process.wait_for_stderr("connection limit reached: 3 connections open (max_connections=3)")
    assert all(is_open(sock) for sock in held)

    held.pop().close()

    def answered() -> bool:
        try:
            return exchange(port, signed_callback(port, ringing())).status == 200
        except OSError:
            return False

    wait_for(answered, "a callback answered once a slot is free")
    for sock in held:
        sock.close()


def test_the_limits_are_logged_at_start(spawn: Callable[..., Process], tmp_path: Path) -> None:
    process, _ = run_service(spawn, tmp_path, TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT="7")

    process.wait_for_stderr(
        "connection limits: each request must arrive within 10 s, at most 1000 connections at once, "
        "idle connections closed after 7 s"
    )


# In process, on each of uvicorn's parsers


@pytest.fixture(params=["httptools", "h11"])
def bounded(
    request: pytest.FixtureRequest, serve: Callable[..., LiveServer]
) -> Iterator[Callable[..., LiveServer]]:
    """`bounded(app, **limits)` serves `app` with twilio_events' bounded protocol on one parser."""

    def start(app: TwilioEvents, **limits: float) -> LiveServer:
        server_limits = ServerLimits(**limits)  # type: ignore[arg-type]
        return serve(
            app,
            config_type=ServingConfig,
            limits=server_limits,
            cap=ConnectionCap(server_limits.max_connections),
            parser=request.param,
        )

    yield start


def slow_app(seconds: float) -> tuple[TwilioEvents, list[str]]:
    app = TwilioEvents(auth_token=TOKEN)
    handled: list[str] = []

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        await asyncio.sleep(seconds)
        handled.append(event.call_sid)

    return app, handled


def test_a_stalled_body_is_cut_and_reaches_no_handler(bounded: Callable[..., LiveServer]) -> None:
    app, handled = slow_app(0)
    live = bounded(app, read_timeout=1)

    with connect(live.port) as sock:
        opened = time.monotonic()
        sock.sendall(STALLED_BODY)
        assert seconds_until_closed(sock, opened) <= 1 + SLACK
    assert handled == []


def test_a_handler_slower_than_the_deadline_still_answers(bounded: Callable[..., LiveServer]) -> None:
    app, handled = slow_app(1.5)
    live = bounded(app, read_timeout=0.5)

    answer = exchange(live.port, signed_callback(live.port, ringing()))

    assert answer.status == 200
    assert len(handled) == 1


def test_the_next_request_on_a_kept_alive_connection_has_its_own_deadline(
    bounded: Callable[..., LiveServer],
) -> None:
    app, handled = slow_app(0)
    live = bounded(app, read_timeout=1, keep_alive_timeout=30)

    with connect(live.port) as sock:
        sock.sendall(signed_callback(live.port, ringing()))
        assert read_response(sock).status == 200
        time.sleep(1.5)  # idle longer than the read deadline: only keep-alive applies while idle
        assert is_open(sock)
        opened = time.monotonic()
        sock.sendall(STALLED_HEAD)  # the start of a next request, then silence
        assert seconds_until_closed(sock, opened) <= 1 + SLACK
    assert len(handled) == 1


def test_an_idle_connection_closes_after_the_keep_alive_timeout(
    bounded: Callable[..., LiveServer],
) -> None:
    app, _ = slow_app(0)
    live = bounded(app, keep_alive_timeout=1)

    with connect(live.port) as sock:
        sock.sendall(request_bytes("GET", "/health", live.port))
        assert read_response(sock).status == 200
        answered = time.monotonic()
        assert seconds_until_closed(sock, answered) <= 1 + SLACK
    assert DEADLINE > 1 + SLACK


def test_a_head_over_16_kib_is_refused(
    bounded: Callable[..., LiveServer], request: pytest.FixtureRequest
) -> None:
    app, _ = slow_app(0)
    live = bounded(app)
    head = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-Padding-%d: %s\r\n" % (i, b"a" * 1000) for i in range(20)
    )

    with connect(live.port) as sock:
        sock.sendall(head)  # 20 KiB of head, still unfinished
        answer = read_response(sock)
        seconds_until_closed(sock, 0.0)

    if request.node.callspec.params["bounded"] == "h11":
        assert answer.status == 400  # h11's own limit, of the same size
    else:
        assert answer.status == 431
        assert answer.text == "Request Header Fields Too Large: the request head exceeds 16384 bytes\n"
    assert exchange(live.port, request_bytes("GET", "/health", live.port)).status == 200

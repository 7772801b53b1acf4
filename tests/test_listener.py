"""Listeners, and `app.run()` serving several of them in one real process."""

from __future__ import annotations

import dataclasses
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from twilio_events import Listener, TwilioEvents
from twilio_events.testing import call_payload, sign

from .conftest import DEADLINE, FORM, TOKEN, Process, encode_form, free_port, wait_for


def test_listener_defaults() -> None:
    listener = Listener()

    assert (listener.port, listener.name, listener.host) == (8090, "twilioListener", "0.0.0.0")
    assert TwilioEvents(auth_token=TOKEN).listeners == [listener]


def test_listener_takes_port_name_and_host_in_that_order() -> None:
    listener = Listener(9001, "calls", "127.0.0.2")

    assert (listener.port, listener.name, listener.host) == (9001, "calls", "127.0.0.2")


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0.0.0.0", "http://127.0.0.1:9001/hooks"),
        ("::", "http://127.0.0.1:9001/hooks"),
        ("", "http://127.0.0.1:9001/hooks"),
        ("192.0.2.10", "http://192.0.2.10:9001/hooks"),
    ],
)
def test_listener_url_is_reachable_locally(host: str, expected: str) -> None:
    assert Listener(9001, "x", host).url("/hooks") == expected


def test_listener_is_frozen() -> None:
    listener = Listener(9001)

    with pytest.raises(dataclasses.FrozenInstanceError):
        listener.port = 9002  # type: ignore[misc]


def test_the_app_keeps_its_listeners() -> None:
    listeners = [Listener(9001, "a"), Listener(9002, "b")]

    app = TwilioEvents(auth_token=TOKEN, listeners=listeners)

    assert app.listeners == listeners
    assert app.listeners is not listeners


RUN_SCRIPT = """
import asyncio
import pathlib
import sys

from twilio_events import Listener, TwilioEvents

port_a, port_b, workdir = int(sys.argv[1]), int(sys.argv[2]), pathlib.Path(sys.argv[3])
app = TwilioEvents(
    listeners=[Listener(port_a, "alpha", "127.0.0.1"), Listener(port_b, "beta", "127.0.0.1")],
)


@app.call.on_ringing
def ringing(event):
    return None


@app.call.on_in_progress
async def slow(event):
    (workdir / "started").write_text(event.call_sid)
    while not (workdir / "release").exists():  # the test releases it once shutdown has begun
        await asyncio.sleep(0.01)
    (workdir / "finished").write_text(event.call_sid)
    return "<Response><Say>finished</Say></Response>"


app.run()
"""


def _post(port: int, payload: dict[str, str], headers: dict[str, str] | None = None) -> httpx2.Response:
    url = f"http://127.0.0.1:{port}/"
    return httpx2.post(
        url,
        content=encode_form(payload),
        headers={"Content-Type": FORM, "X-Twilio-Signature": sign(url, payload, TOKEN), **(headers or {})},
        timeout=DEADLINE,
    )


def _start(spawn: Callable[..., Process], tmp_path: Path, port_a: int, port_b: int) -> Process:
    (tmp_path / "run_app.py").write_text(RUN_SCRIPT)
    return spawn(
        ["run_app.py", str(port_a), str(port_b), str(tmp_path)],
        {"TWILIO_AUTH_TOKEN": TOKEN},
    )


def test_run_serves_two_listeners_and_stops_gracefully_on_sigterm(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    port_a, port_b = free_port(), free_port()
    process = _start(spawn, tmp_path, port_a, port_b)
    process.wait_for_stderr(f"Uvicorn running on http://127.0.0.1:{port_a}")
    process.wait_for_stderr(f"Uvicorn running on http://127.0.0.1:{port_b}")
    assert f"[alpha] receiving Twilio callbacks at http://127.0.0.1:{port_a}/" in process.stderr
    assert f"[beta] receiving Twilio callbacks at http://127.0.0.1:{port_b}/" in process.stderr

    # The same handlers answer on both ports, and each log line names its listener.
    for port, name in ((port_a, "alpha"), (port_b, "beta")):
        payload = call_payload("ringing")
        response = _post(port, payload)
        assert response.status_code == 200
        assert response.text == '<?xml version="1.0" encoding="UTF-8"?><Response/>'
        process.wait_for_stderr(f"[{name}] call ringing {payload['CallSid']} -> ringing()")

    # trust_forwarded_headers is off: a proxy's X-Forwarded-Proto must not change the URL that is signed.
    assert _post(port_a, call_payload("ringing"), {"X-Forwarded-Proto": "https"}).status_code == 200

    # A slow handler is in flight when SIGTERM arrives; it finishes and its answer is sent before exit.
    slow_payload = call_payload("in-progress")
    answers: list[httpx2.Response] = []
    request = threading.Thread(target=lambda: answers.append(_post(port_b, slow_payload)))
    request.start()
    try:
        wait_for(lambda: (tmp_path / "started").exists(), "the slow handler to start")
        process.terminate()
        process.wait_for_stderr("Shutting down", count=2)
        assert process.popen.poll() is None, "the process exited with a handler still running"
        (tmp_path / "release").write_text("go")
    finally:
        request.join(DEADLINE)

    assert process.wait() == 0
    assert [answer.status_code for answer in answers] == [200]
    assert answers[0].text == "<Response><Say>finished</Say></Response>"
    assert (tmp_path / "finished").read_text() == slow_payload["CallSid"]
    assert f"[beta] call in-progress {slow_payload['CallSid']} -> slow()" in process.stderr
    assert process.stderr.count("Finished server process") == 2
    assert "Traceback" not in process.stderr


def test_run_stops_every_listener_when_one_cannot_bind(spawn: Callable[..., Process], tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy_port = taken.getsockname()[1]
        process = _start(spawn, tmp_path, free_port(), busy_port)

        returncode = process.wait()

    assert returncode != 0
    assert f"[beta] could not start on 127.0.0.1:{busy_port}; stopping" in process.stderr

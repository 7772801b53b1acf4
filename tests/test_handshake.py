"""A WebSocket handshake gets the answer a GET gets: 405 with `Allow: POST` on the webhook path, the
health check on the health path, 404 elsewhere; on real servers, over raw sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from twilio_events import TwilioEvents

from .conftest import TOKEN, LiveServer, Process
from .raw_http import connect, read_response, request_bytes, seconds_until_closed
from .test_connections import run_service

HANDSHAKE = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


def handshake(port: int, target: str) -> Any:
    """Send a WebSocket handshake for `target`; the HTTP answer, and the connection is then closed."""
    with connect(port) as sock:
        sock.sendall(request_bytes("GET", target, port, HANDSHAKE))
        answer = read_response(sock)
        seconds_until_closed(sock, 0.0)
    return answer


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_the_webhook_path_answers_405(serve: Callable[..., LiveServer], parser: str) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), http=parser, ws="auto")

    answer = handshake(live.port, "/")

    assert answer.status == 405
    assert answer.headers["allow"] == "POST"
    assert answer.text == "Method Not Allowed: Twilio callbacks are POST requests\n"


def test_other_paths_answer_as_a_get_would(serve: Callable[..., LiveServer]) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN, path="/hooks"), ws="auto")

    health = handshake(live.port, "/hooks/health")
    elsewhere = handshake(live.port, "/elsewhere")

    assert health.status == 200
    assert b'"status":"ok"' in health.body
    assert elsewhere.status == 404
    assert elsewhere.text == "Not Found: Twilio callbacks are received at /hooks\n"


def test_mounted_the_same(serve: Callable[..., LiveServer]) -> None:
    events = TwilioEvents(auth_token=TOKEN)
    live = serve(Starlette(routes=[Mount("/twilio", app=events)]), ws="auto")

    answer = handshake(live.port, "/twilio/")

    assert answer.status == 405
    assert answer.headers["allow"] == "POST"


def test_twilio_events_run_answers_405(spawn: Callable[..., Process], tmp_path: Path) -> None:
    process, port = run_service(spawn, tmp_path, TWILIO_EVENTS_MAX_CONNECTIONS="2")

    for _ in range(3):  # more handshakes than the cap: each gives its connection slot back
        answer = handshake(port, "/")
        assert answer.status == 405
        assert answer.headers["allow"] == "POST"
    assert "connection limit reached" not in process.stderr


def test_a_server_without_the_extension_is_told_to_close() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "websocket", "path": "/", "root_path": "", "headers": [], "query_string": b""}
    asyncio.run(TwilioEvents(auth_token=TOKEN)(scope, receive, send))

    assert sent == [{"type": "websocket.close", "code": 1000}]

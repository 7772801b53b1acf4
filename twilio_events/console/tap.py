"""The console's one hook in the request path: each callback's request and answer, into the recorder."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..delivery.outcome import listen
from ..events import Params
from ..http.endpoint import SIGNED_BY_SCOPE_KEY, listener_of, route_path
from ..http.request import header
from ..kinds import IDEMPOTENCY_HEADER, Unrecognised, recognise
from ..listener import LISTENER_SCOPE_KEY
from ..security import SIGNATURE_HEADER
from ..streams import NotCloudEvents, parse_batch
from .recorder import SID_PARAMS, Entry, Recorder, Replayable

REPLAY_SCOPE_KEY = "twilio_events.console.replay_of"
"""Set in the scope of a replayed request: the id of the entry it replays."""

SHOWN_BODY = 16 * 1024
"""Characters of a response (or of a body that is not a form) the console keeps."""

KEPT_BODY = 2 * 1024 * 1024
"""Bytes of a request body the tap keeps at most (the endpoint refuses larger ones anyway)."""

_NOT_REPLAYED = (SIGNATURE_HEADER.lower(), IDEMPOTENCY_HEADER.lower(), b"content-length")


class Tap:
    """Wraps the endpoint: a POST to a callback path is recorded with its outcome; the rest passes by."""

    def __init__(
        self,
        app: ASGIApp,
        recorder: Recorder,
        paths: Callable[[], tuple[str | None, ...]],
        validating: Callable[[], bool],
    ) -> None:
        self.app = app
        self.recorder = recorder
        self._paths = paths
        self._validating = validating

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) not in self._paths():
            await self.app(scope, receive, send)
            return
        body = bytearray()
        sent: dict[str, Any] = {"status": 0, "type": "", "body": bytearray()}

        async def receive_tapped() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < KEPT_BODY:
                body.extend(message.get("body", b""))
            return message

        async def send_tapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                headers = dict(message.get("headers", []))
                sent["type"] = headers.get(b"content-type", b"").decode("latin-1")
            elif message["type"] == "http.response.body" and len(sent["body"]) < SHOWN_BODY:
                sent["body"].extend(message.get("body", b""))
            await send(message)

        outcome = listen()
        started = time.perf_counter()
        try:
            await self.app(scope, receive_tapped, send_tapped)
        finally:
            duration = (time.perf_counter() - started) * 1000
            response = bytes(sent["body"]).decode("utf-8", "replace")[:SHOWN_BODY]
            self.recorder.add(
                self._entry(scope, bytes(body), sent, response, outcome.name, outcome.handler, duration)
            )

    def _entry(
        self,
        scope: Scope,
        body: bytes,
        sent: dict[str, Any],
        response: str,
        outcome: str,
        handler: str,
        duration: float,
    ) -> Entry:
        """The entry of one request: what it was, how it was judged, what was answered."""
        status: int = sent["status"]
        is_form = (header(scope, b"content-type") or "").split(";")[0].strip().lower().endswith("urlencoded")
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True) if is_form else []
        params = Params.from_pairs(pairs)
        token = header(scope, IDEMPOTENCY_HEADER)
        try:
            callback = recognise(params, token)
            channel, kind_status, sid, key = callback.channel, callback.status, callback.sid, callback.key
        except Unrecognised:
            channel, kind_status, sid = ("streams", "batch", "") if not is_form else ("?", "", "")
            key = None
        sids = frozenset(value for name, value in pairs if name in SID_PARAMS and value)
        if not is_form and body:
            reported = _batch_params(body)
            kind_status = f"batch of {len(reported)}" if reported else kind_status
            sids = frozenset(value for event in reported for name, value in event if name in SID_PARAMS)
            pairs = [("(body)", body.decode("utf-8", "replace")[:SHOWN_BODY])]
        if not outcome:
            outcome = "refused" if 400 <= status < 500 else "error" if status >= 500 else "disconnected"
        replayable = is_form and len(body) < KEPT_BODY
        headers = [(name, value) for name, value in scope["headers"] if name.lower() not in _NOT_REPLAYED]
        kept_scope = {k: v for k, v in scope.items() if k in _REPLAYED_SCOPE}
        return Entry(
            id=self.recorder.next_id(),
            at=time.time(),
            listener=listener_of(scope),
            path=route_path(scope),
            channel=channel,
            status=kind_status,
            sid=sid,
            sequence=params.get("SequenceNumber") or "",
            verdict=self._verdict(scope, status, response),
            handler=handler,
            outcome=outcome,
            duration_ms=duration,
            http_status=status,
            response_type=sent["type"],
            response_body=response,
            params=pairs,
            token=token or "",
            key=key,
            replay_of=scope.get(REPLAY_SCOPE_KEY),
            sids=sids | {sid} if sid else sids,
            replayable=Replayable({**kept_scope, "headers": headers}, body) if replayable else None,
        )

    def _verdict(self, scope: Scope, status: int, response: str) -> str:
        """Was the signature accepted, refused (and why), or not checked?"""
        if SIGNED_BY_SCOPE_KEY in scope:
            return f"accepted ({scope[SIGNED_BY_SCOPE_KEY]})"
        if status in (401, 403):
            return f"refused: {response.strip()}"
        if not self._validating():
            return "not checked (validation off)"
        return "not reached"


def _batch_params(body: bytes) -> list[list[tuple[str, str]]]:
    """The parameters of each callback an Event Streams batch reports (none when it is not one)."""
    try:
        return [event.params() for event in parse_batch(body)]
    except NotCloudEvents:
        return []


_REPLAYED_SCOPE = frozenset(
    {"type", "asgi", "http_version", "method", "scheme", "path", "raw_path", "root_path", "query_string"}
    | {"server", "client", LISTENER_SCOPE_KEY}
)

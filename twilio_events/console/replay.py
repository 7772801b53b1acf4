"""Replay: a recorded callback sent to the app again, signed with the app's own token as Twilio signs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message

from ..kinds import IDEMPOTENCY_HEADER
from ..payloads import new_idempotency_token, sign
from ..security import SIGNATURE_HEADER, callback_url
from .recorder import Entry
from .tap import REPLAY_SCOPE_KEY

UNSIGNED = "replay-without-a-token"
"""What a replay is signed with when the app has no auth token (only a service that checks nothing accepts
it)."""


@dataclass(slots=True)
class Replay:
    """Sends recorded callbacks through the tap, so the replay is recorded like any callback."""

    app: ASGIApp
    token_for: Callable[[str | None], str | None]
    """The app's primary auth token for an AccountSid (None when it has none)."""
    url_of: Callable[[dict[str, Any]], str]
    """The URL the app checks a request's signature against."""

    async def send(self, entry: Entry, *, same_token: bool) -> dict[str, Any]:
        """Send `entry` again with a fresh idempotency token (or its own); what was sent and answered."""
        if entry.replayable is None:
            raise ValueError("only a form callback the console recorded whole can be replayed")
        body = entry.replayable.body
        pairs = parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        token = entry.token if same_token and entry.token else new_idempotency_token()
        scope: dict[str, Any] = {**entry.replayable.scope, REPLAY_SCOPE_KEY: entry.id}
        secret = self.token_for(dict(pairs).get("AccountSid"))
        signature = sign(self.url_of(scope), pairs, secret or UNSIGNED)
        scope["headers"] = [
            *entry.replayable.scope["headers"],
            (b"content-length", str(len(body)).encode()),
            (SIGNATURE_HEADER, signature.encode()),
            (IDEMPOTENCY_HEADER, token.encode()),
        ]
        status = await _call(self.app, scope, body)
        return {
            "replayed": entry.id,
            "token": token,
            "same_token": token == entry.token,
            "signed_with": "the app's auth token" if secret else "no token (the app has none)",
            "http_status": status,
        }


async def _call(app: ASGIApp, scope: dict[str, Any], body: bytes) -> int:
    """Run one request through `app` in this process; its status code."""
    messages: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


def signing_url(public_url: Callable[[], str | None], trust: Callable[[], bool]) -> Callable[[Any], str]:
    """The URL a replayed request is signed for: the one the endpoint will check."""
    return lambda scope: callback_url(scope, public_url(), trust())

"""The webhook endpoint: one callback's way from the ASGI scope to the answer, checked in order.

method -> headers -> body -> form -> signature -> account -> what kind of request -> delivery -> answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..channels import Channel
from ..delivery import Dispatcher
from ..events import Params
from ..kinds import IDEMPOTENCY_HEADER, Recognised, Unrecognised, recognise
from ..listener import LISTENER_SCOPE_KEY
from ..security import SIGNATURE_HEADER, SignatureValidator, callback_url
from .forms import parse_form
from .request import ClientDisconnected, Rejected, check_content_type, header, read_body
from .responses import refuse

logger = logging.getLogger("twilio_events")


@dataclass(slots=True)
class Endpoint:
    """Answers HTTP requests for one app: the health check, and Twilio's callbacks at `path`."""

    path: str
    channels: dict[str, Channel[Any, Any]]
    dispatcher: Dispatcher
    validator: SignatureValidator | None
    account_sid: str | None
    public_url: str | None
    trust_forwarded_headers: bool
    max_body_size: int

    @property
    def health_path(self) -> str:
        """Where `GET` answers the health check."""
        return self.path.rstrip("/") + "/health"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route = route_path(scope)
        if route == self.health_path and scope["method"] in ("GET", "HEAD"):
            response = await self.dispatcher.health()
        elif route != self.path:
            response = refuse(404, f"Not Found: Twilio callbacks are received at {self.path}")
        else:
            try:
                response = await self._respond(scope, receive)
            except Rejected as rejected:
                response = refuse(rejected.status_code, rejected.message, rejected.headers)
                logger.info("[%s] refused %s: %s", listener_of(scope), rejected.status_code, rejected.message)
            except ClientDisconnected:
                return
        await response(scope, receive, send)
        logger.debug(
            "[%s] %s %s -> %d in %.1f ms",
            listener_of(scope),
            scope["method"],
            scope["path"],
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        if scope["method"] != "POST":
            raise Rejected(405, "Method Not Allowed: Twilio callbacks are POST requests", {"Allow": "POST"})
        signature = header(scope, SIGNATURE_HEADER)
        if self.validator is not None and not signature:
            raise Rejected(403, "Forbidden: the X-Twilio-Signature header is missing")
        check_content_type(scope)
        params = parse_form(await read_body(scope, receive, self.max_body_size))
        if self.validator is not None:
            self._check_signature(scope, params, signature or "")
        if self.account_sid and params.get("AccountSid") != self.account_sid:
            raise Rejected(403, "Forbidden: this callback is for another Twilio account (AccountSid)")
        callback = _recognise(params, header(scope, IDEMPOTENCY_HEADER))
        channel = self.channels[callback.channel]
        return await self.dispatcher.deliver(channel, callback, params, listener_of(scope))

    def _check_signature(self, scope: Scope, params: Params, signature: str) -> None:
        url = callback_url(scope, self.public_url, self.trust_forwarded_headers)
        assert self.validator is not None
        if not self.validator.is_valid(url, params, signature):
            hint = (
                "check the auth token, and that public_url is the base URL Twilio calls"
                if self.public_url
                else "check the auth token; if Twilio calls another URL (proxy, ngrok, TLS offload), set "
                "public_url= or trust_forwarded_headers=True"
            )
            logger.warning("[%s] invalid X-Twilio-Signature for %s: %s", listener_of(scope), url, hint)
            raise Rejected(
                403,
                "Forbidden: X-Twilio-Signature does not match this request "
                "(wrong auth token, or the service does not know its public URL)",
            )


def _recognise(params: Params, token: str | None) -> Recognised:
    """What kind of request this is; 400 for a form no channel receives."""
    try:
        return recognise(params, token)
    except Unrecognised as exc:
        raise Rejected(400, str(exc)) from None


def route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and extends root_path)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return path or "/"


def listener_of(scope: Scope) -> str:
    """The name of the listener the request came in on ("asgi" when served by something else)."""
    return str(scope.get(LISTENER_SCOPE_KEY, "asgi"))

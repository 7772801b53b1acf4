"""The webhook endpoint: one callback's way from the ASGI scope to the answer, checked in order.

method -> upgrade -> HTTP credentials -> headers -> body -> form -> signature -> account -> what kind of
request -> delivery -> answer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, NoReturn

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..channels import Channel
from ..delivery import Dispatcher
from ..events import Params
from ..kinds import IDEMPOTENCY_HEADER, Recognised, Unrecognised, recognise
from ..listener import LISTENER_SCOPE_KEY
from ..observability import NO_TELEMETRY, NoTelemetry
from ..security import SIGNATURE_HEADER, Refusal, RefusalLog, RequestVerifier, callback_url, explain
from ..streams import JSON_MEDIA_TYPES, NotCloudEvents, parse_batch
from .forms import parse_form
from .request import ClientDisconnected, Rejected, check_content_type, check_no_upgrade, header, read_body
from .responses import refuse

STREAMS_BODY_FACTOR = 16
"""An Event Streams batch may be this many times `max_body_size` (1 MiB by default): it holds many events."""

logger = logging.getLogger("twilio_events")


@dataclass(slots=True)
class Endpoint:
    """Answers HTTP requests for one app: the health check, and Twilio's callbacks at `path`."""

    path: str
    channels: dict[str, Channel[Any, Any]]
    dispatcher: Dispatcher
    verifier: RequestVerifier
    refusals: RefusalLog
    public_url: str | None
    trust_forwarded_headers: bool
    max_body_size: int
    streams_path: str | None = None
    """Where an Event Streams webhook sink posts its CloudEvents (None: not received)."""
    read_timeout: float | None = None
    """Seconds the body may take to arrive (408 after); None: no limit of the app's own."""
    telemetry: NoTelemetry = NO_TELEMETRY
    """Metrics and spans (nothing when both are off)."""

    @property
    def health_path(self) -> str:
        """Where `GET` answers the health check."""
        return self.path.rstrip("/") + "/health"

    @property
    def metrics_path(self) -> str:
        """Where `GET` answers Prometheus's scrape, when metrics are on."""
        return self.path.rstrip("/") + "/metrics"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route = route_path(scope)
        if route == self.health_path and scope["method"] in ("GET", "HEAD"):
            response = await self.dispatcher.health()
        elif route == self.metrics_path and self.telemetry.serves_metrics:
            response = await self._metrics(scope)
        elif route != self.path and route != self.streams_path:
            response = refuse(404, f"Not Found: Twilio callbacks are received at {self.path}")
        else:
            with self.telemetry.request(scope["method"], route, listener_of(scope)):
                try:
                    if route == self.path:
                        response = await self._respond(scope, receive)
                    else:
                        response = await self._respond_to_stream(scope, receive)
                except Rejected as rejected:
                    response = refuse(rejected.status_code, rejected.message, rejected.headers)
                    self.telemetry.refused(rejected.status_code, _cause(rejected))
                    # an _Explained refusal was logged already, rate limited, with its cause
                    if not isinstance(rejected, _Explained):
                        status, message = rejected.status_code, rejected.message
                        logger.info("[%s] refused %s: %s", listener_of(scope), status, message)
                except ClientDisconnected:
                    return
                self.telemetry.answered(response.status_code)
        await response(scope, receive, send)
        logger.debug(
            "[%s] %s %s -> %d in %.1f ms%s",
            listener_of(scope),
            scope["method"],
            scope["path"],
            response.status_code,
            (time.perf_counter() - started) * 1000,
            f", signed with the {scope[SIGNED_BY_SCOPE_KEY]}" if SIGNED_BY_SCOPE_KEY in scope else "",
        )

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        if scope["method"] != "POST":
            raise Rejected(405, "Method Not Allowed: Twilio callbacks are POST requests", {"Allow": "POST"})
        check_no_upgrade(scope)
        self._check_credentials(scope)
        signature = header(scope, SIGNATURE_HEADER)
        if self.verifier.validate_signature and not signature:
            self._refuse(Refusal("no-signature"), scope, Params(), "")
        check_content_type(scope)
        with self.telemetry.step("parse"):
            params = parse_form(await read_body(scope, receive, self.max_body_size, self.read_timeout))
        with self.telemetry.step("verify"):
            self._check_signature(scope, params, signature or "")
        callback = _recognise(params, header(scope, IDEMPOTENCY_HEADER))
        self.telemetry.recognised(callback.channel, callback.label, callback.sid, callback.kind.value)
        channel = self.channels[callback.channel]
        return await self.dispatcher.deliver(channel, callback, params, listener_of(scope))

    async def _metrics(self, scope: Scope) -> Response:
        """Prometheus's scrape: GET (or HEAD) only."""
        if scope["method"] not in ("GET", "HEAD"):
            return refuse(405, "Method Not Allowed: metrics are read with GET", {"Allow": "GET"})
        from ..observability.metrics import CONTENT_TYPE  # metrics are on: prometheus_client is there

        return Response(await self.dispatcher.metrics(), media_type=CONTENT_TYPE)

    async def _respond_to_stream(self, scope: Scope, receive: Receive) -> Response:
        """An Event Streams batch: every CloudEvent to its channel's handlers, acknowledged as one."""
        if scope["method"] != "POST":
            raise Rejected(405, "Method Not Allowed: Event Streams posts its events", {"Allow": "POST"})
        check_no_upgrade(scope)
        self._check_credentials(scope)
        signature = header(scope, SIGNATURE_HEADER)
        if self.verifier.validate_signature and not signature:
            self._refuse(Refusal("no-signature"), scope, Params(), "")
        content_type = header(scope, b"content-type") or ""
        if content_type.split(";", 1)[0].strip().lower() not in JSON_MEDIA_TYPES:
            shown = content_type or "no Content-Type"
            raise Rejected(
                415, f"Unsupported Media Type: an Event Streams sink posts application/json, got {shown}"
            )
        body = await read_body(scope, receive, self.max_body_size * STREAMS_BODY_FACTOR, self.read_timeout)
        try:
            batch = [Params.from_pairs(event.params()) for event in parse_batch(body)]
        except NotCloudEvents as exc:
            raise Rejected(400, f"Bad Request: not an Event Streams batch of CloudEvents: {exc}") from None
        accounts = [params.get("AccountSid") for params in batch]
        self._check_signature(scope, Params(), signature or "", body=body, accounts=accounts)
        items = [
            (self.channels[callback.channel], callback, params)
            for params in batch
            for callback in (recognise(params),)
        ]
        return await self.dispatcher.deliver_batch(items, listener_of(scope))

    def _check_credentials(self, scope: Scope) -> None:
        """HTTP Basic or Digest authentication, when configured: 401 asks Twilio for the credentials."""
        try:
            self.verifier.authenticate(scope)
        except Refusal as refusal:
            if refusal.status_code == 401:  # Twilio's first try never has them: not worth a warning
                logger.debug("[%s] 401: asking for HTTP credentials (%s)", listener_of(scope), refusal.cause)
                message = "Unauthorized: HTTP credentials required"
                raise _Explained(401, message, refusal.headers, cause="auth-required") from None
            self._refuse(refusal, scope, Params(), "")

    def _check_signature(
        self,
        scope: Scope,
        params: Params,
        signature: str,
        *,
        body: bytes | None = None,
        accounts: list[str | None] | None = None,
    ) -> None:
        """The signature (when checked) and the account(s); records which credential signed the request."""
        url = ""
        if self.verifier.validate_signature:
            url = callback_url(scope, self.public_url, self.trust_forwarded_headers)
        try:
            if accounts is None:
                match = self.verifier.verify(scope, url, params, signature)
            else:  # a JSON batch: signed once, and every event's account must be accepted
                match = self.verifier.verify(scope, url, params, signature, body=body, account=accounts[0])
                for account in accounts[1:]:
                    self.verifier.check_account(account)
        except Refusal as refusal:
            self._refuse(refusal, scope, params, signature)
        if match is not None:
            scope[SIGNED_BY_SCOPE_KEY] = match.credential
            self.telemetry.signed(match.credential)
            self.verifier.note(match, listener_of(scope))

    def _refuse(self, refusal: Refusal, scope: Scope, params: Params, signature: str) -> NoReturn:
        """403 with a terse message for the sender; the cause, explained, in one rate-limited WARNING."""
        if self.refusals.should_log(refusal.cause):
            message = explain(refusal, scope, params, signature, self.verifier, self.public_url)
            self.refusals.warn(refusal.cause, listener_of(scope), refusal.status_code, message)
        message = _REFUSALS.get(refusal.cause, _FORBIDDEN)
        raise _Explained(refusal.status_code, message, refusal.headers, cause=refusal.cause)


SIGNED_BY_SCOPE_KEY = "twilio_events.signed_by"
"""The scope key that holds which credential signed an accepted request, for the request's log line."""

_FORBIDDEN = (
    "Forbidden: X-Twilio-Signature does not match this request "
    "(wrong auth token, or the service does not know its public URL)"
)
_REFUSALS = {
    "no-signature": "Forbidden: the X-Twilio-Signature header is missing",
    "other-account": "Forbidden: this callback is for another Twilio account (AccountSid)",
    "body-hash": "Forbidden: the body does not match its bodySHA256",
    "auth-wrong": "Forbidden: wrong HTTP credentials",
    "auth-malformed": "Forbidden: wrong HTTP credentials",
}


class _Explained(Rejected):
    """A refusal whose cause the endpoint has logged already (rate limited)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None, *, cause: str) -> None:
        super().__init__(status_code, message, headers)
        self.cause = cause


class _Unrecognised(Rejected):
    """A form no channel receives."""


_CAUSES = {
    400: "bad-request",
    405: "method",
    408: "timeout",
    413: "too-large",
    415: "media-type",
}


def _cause(rejected: Rejected) -> str:
    """A short, bounded name for why a request was refused (a metric label)."""
    if isinstance(rejected, _Explained):
        return rejected.cause
    if isinstance(rejected, _Unrecognised):
        return "unrecognised"
    return _CAUSES.get(rejected.status_code, "other")


def _recognise(params: Params, token: str | None) -> Recognised:
    """What kind of request this is; 400 for a form no channel receives."""
    try:
        return recognise(params, token)
    except Unrecognised as exc:
        raise _Unrecognised(400, str(exc)) from None


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

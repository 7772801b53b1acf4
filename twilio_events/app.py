"""`TwilioEvents`: configuration, the two channels and the ASGI entry point."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .channels import CallChannel, Channel, Handler, SmsChannel
from .events import CallEvent, Params, SmsEvent
from .forms import ClientDisconnected, Rejected, check_content_type, parse_form, read_body
from .listener import LISTENER_SCOPE_KEY, Listener, serve
from .responses import acknowledge, handler_response, refuse
from .security import SIGNATURE_HEADER, SignatureValidator, callback_url, header

if TYPE_CHECKING:
    from twilio.rest import Client

logger = logging.getLogger("twilio_events")

F = TypeVar("F", bound=Callable[..., Any])
Event = CallEvent | SmsEvent

VALIDATE_SIGNATURE_ENV = "TWILIO_EVENTS_VALIDATE_SIGNATURE"
NO_TOKEN_MESSAGE = (
    "Signature validation is on but no Twilio auth token is configured. Set TWILIO_AUTH_TOKEN "
    "(Twilio Console > Account > API keys & tokens) or pass auth_token=...; for local development only, "
    f"turn validation off with validate_signature=False or {VALIDATE_SIGNATURE_ENV}=false."
)


class ConfigurationError(RuntimeError):
    """The app cannot run as configured; the message says what to set."""


class TwilioEvents:
    """An ASGI app that validates Twilio's callbacks and runs the handler for each status."""

    def __init__(
        self,
        *,
        auth_token: str | None = None,
        account_sid: str | None = None,
        validate_signature: bool | None = None,
        public_url: str | None = None,
        trust_forwarded_headers: bool = False,
        path: str = "/",
        max_body_size: int = 64 * 1024,
        listeners: Sequence[Listener] | None = None,
    ) -> None:
        """Configure the app.

        auth_token / account_sid: default to TWILIO_AUTH_TOKEN / TWILIO_ACCOUNT_SID; with an account SID,
            callbacks for any other account are refused (403).
        validate_signature: check X-Twilio-Signature (default True, or TWILIO_EVENTS_VALIDATE_SIGNATURE).
        public_url: the base URL Twilio calls (e.g. "https://abc.ngrok.app"), used for signatures.
        trust_forwarded_headers: rebuild the public URL from Forwarded / X-Forwarded-* headers.
        path: where the webhook route lives inside this app.
        max_body_size: larger bodies are refused with 413.
        listeners: where `run()` serves; default one `Listener(port=8090, name="twilioListener")`.
        """
        self.auth_token = auth_token or os.environ.get("TWILIO_AUTH_TOKEN") or None
        self.account_sid = account_sid or os.environ.get("TWILIO_ACCOUNT_SID") or None
        if validate_signature is None:
            validate_signature = _env_flag(VALIDATE_SIGNATURE_ENV, default=True)
        self.validate_signature = validate_signature
        self.public_url = public_url
        self.trust_forwarded_headers = trust_forwarded_headers
        self.path = "/" + path.strip("/") if path.strip("/") else "/"
        self.max_body_size = max_body_size
        self.listeners: list[Listener] = list(listeners) if listeners else [Listener()]
        self.call = CallChannel()
        self.sms = SmsChannel()
        self._error_handler: Handler | None = None
        self._client: Client | None = None
        self._validator: SignatureValidator | None = None
        if validate_signature:
            if not self.auth_token:
                raise ConfigurationError(NO_TOKEN_MESSAGE)
            self._validator = SignatureValidator(self.auth_token)
        else:
            _warn_validation_off()

    def __repr__(self) -> str:
        return f"TwilioEvents(path={self.path!r}, validate_signature={self.validate_signature})"

    def on_error(self, function: F) -> F:
        """Register a hook `(event, exc)` for handler errors; what it returns replaces the 500."""
        if self._error_handler is not None:
            raise ValueError(f"an error hook is already registered: {self._error_handler.name}")
        self._error_handler = Handler.wrap(function)
        return function

    @property
    def client(self) -> Client:
        """A `twilio.rest.Client` built on first use from the same credentials."""
        if self._client is None:
            if not self.account_sid or not self.auth_token:
                raise ConfigurationError(
                    "app.client needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                    "(or account_sid= and auth_token=)"
                )
            from twilio.rest import Client  # imported here: heavy, and most webhooks never need it

            self._client = Client(self.account_sid, self.auth_token)
        return self._client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._handle_http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._handle_lifespan(receive, send)
        else:
            await send({"type": "websocket.close", "code": 1000})

    @contextlib.asynccontextmanager
    async def lifespan(self, _parent: object = None) -> AsyncIterator[None]:
        """Start-up and shut-down; usable as a parent app's `lifespan=` when this app is mounted."""
        self._log_startup()
        yield

    def run(self, *, log_level: str = "info", graceful_timeout: int = 30) -> None:
        """Serve every listener in this process until interrupted; in-flight handlers finish first."""
        if not logging.getLogger().handlers:
            logging.basicConfig(
                level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
            )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve(self, self.listeners, log_level=log_level, graceful_timeout=graceful_timeout))

    async def _handle_lifespan(self, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            self._log_startup()
        except Exception as exc:  # pragma: no cover - defensive: report, do not crash the server
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await send({"type": "lifespan.shutdown.complete"})

    def _log_startup(self) -> None:
        _ensure_log_output()
        counts = f"{len(self.call.handlers)} call and {len(self.sms.handlers)} message handlers"
        if self._validator is None:
            _warn_validation_off()
            logger.info("twilio_events ready at %s with %s", self.path, counts)
        else:
            logger.info("twilio_events ready at %s with %s; signatures validated", self.path, counts)

    async def _handle_http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if _route_path(scope) != self.path:
            response = refuse(404, f"Not Found: Twilio callbacks are received at {self.path}")
        else:
            try:
                response = await self._respond(scope, receive)
            except Rejected as rejected:
                response = refuse(rejected.status_code, rejected.message, rejected.headers)
                logger.info("[%s] refused %s: %s", _listener(scope), rejected.status_code, rejected.message)
            except ClientDisconnected:
                return
        await response(scope, receive, send)
        logger.debug(
            "[%s] %s %s -> %d in %.1f ms",
            _listener(scope),
            scope["method"],
            scope["path"],
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )

    async def _respond(self, scope: Scope, receive: Receive) -> Response:
        if scope["method"] != "POST":
            raise Rejected(405, "Method Not Allowed: Twilio callbacks are POST requests", {"Allow": "POST"})
        signature = header(scope, SIGNATURE_HEADER)
        if self._validator is not None and not signature:
            raise Rejected(403, "Forbidden: the X-Twilio-Signature header is missing")
        check_content_type(scope)
        params = parse_form(await read_body(scope, receive, self.max_body_size))
        if self._validator is not None:
            self._check_signature(scope, params, signature or "")
        if self.account_sid and params.get("AccountSid") != self.account_sid:
            raise Rejected(403, "Forbidden: this callback is for another Twilio account (AccountSid)")
        channel, event = self._event_for(params)
        return await self._dispatch(scope, channel, event)

    def _check_signature(self, scope: Scope, params: Params, signature: str) -> None:
        url = callback_url(scope, self.public_url, self.trust_forwarded_headers)
        assert self._validator is not None
        if not self._validator.is_valid(url, params, signature):
            logger.warning(
                "[%s] invalid X-Twilio-Signature for %s: if Twilio calls another URL (proxy, ngrok, TLS "
                "offload), set public_url= or trust_forwarded_headers=True",
                _listener(scope),
                url,
            )
            raise Rejected(
                403,
                "Forbidden: X-Twilio-Signature does not match this request "
                "(wrong auth token, or the service does not know its public URL)",
            )

    def _event_for(self, params: Params) -> tuple[Channel[Any, Any], Event]:
        if params.get("CallStatus"):
            return self.call, CallEvent.from_params(params)
        if params.get("MessageStatus") or params.get("SmsStatus"):
            return self.sms, SmsEvent.from_params(params)
        raise Rejected(
            400,
            "Bad Request: no status field; a Twilio callback carries CallStatus (calls) "
            "or MessageStatus / SmsStatus (messages)",
        )

    async def _dispatch(self, scope: Scope, channel: Channel[Any, Any], event: Event) -> Response:
        handler = channel.handler_for(event.status)
        if handler is None:
            logger.debug(
                "[%s] no %s handler for %r (%s): acknowledged",
                _listener(scope),
                channel.name,
                str(event.status),
                event.sid,
            )
            return acknowledge()
        try:
            result = await handler.call(event)
            response = handler_response(result)
        except Exception as exc:
            return await self._handler_failed(scope, channel, handler, event, exc)
        logger.info(
            "[%s] %s %s %s -> %s()", _listener(scope), channel.name, event.status, event.sid, handler.name
        )
        return response

    async def _handler_failed(
        self, scope: Scope, channel: Channel[Any, Any], handler: Handler, event: Event, exc: Exception
    ) -> Response:
        logger.error(
            "[%s] %s handler %s() failed for %s %s",
            _listener(scope),
            channel.name,
            handler.name,
            event.sid,
            event.status,
            exc_info=exc,
        )
        if self._error_handler is not None:
            try:
                result = await self._error_handler.call(event, exc)
                if result is not None:
                    return handler_response(result)
            except Exception as hook_exc:
                logger.error(
                    "[%s] error hook %s() failed",
                    _listener(scope),
                    self._error_handler.name,
                    exc_info=hook_exc,
                )
        return refuse(500, f"Internal Server Error: the {channel.name} handler failed for {event.sid}")


def _route_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path and extends root_path)."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    return path or "/"


def _listener(scope: Scope) -> str:
    return str(scope.get(LISTENER_SCOPE_KEY, "asgi"))


def _env_flag(name: str, *, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def _ensure_log_output() -> None:
    """Show this package's INFO lines when nothing configured logging (plain `uvicorn module:app`)."""
    if logger.handlers or logging.getLogger().handlers or logger.level != logging.NOTSET:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def _warn_validation_off() -> None:
    logger.warning(
        "X-Twilio-Signature validation is OFF: anyone who can reach this service can fake Twilio "
        "callbacks. Use this only for local development."
    )

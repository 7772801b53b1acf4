"""`TwilioEvents`: configuration, the channels, start-up and shut-down, and the ASGI entry point."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from .channels import CallChannel, Channel, Handler, SmsChannel
from .channels_streams import StreamsChannel
from .channels_voice import AmdChannel, ConferenceChannel, RecordingChannel, TranscriptionChannel
from .config import (
    CONSOLE_ENV,
    NO_TOKEN_MESSAGE,
    VALIDATE_SIGNATURE_ENV,
    ConfigurationError,
    below,
    check_public_url,
    default_listeners,
    delivery_mode,
    env_flag,
    mount_path,
    seconds,
    store_for,
)
from .delivery import DeliverySettings, Dispatcher, RetryPolicy
from .handler_types import ErrorHook
from .http.endpoint import Endpoint
from .http.handshake import answer_handshake
from .http.responses import refuse
from .lifecycle import Lifecycle
from .limits import ServerLimits
from .listener import Listener
from .logs import log_ready, warn_validation_off
from .observability import MissingExtra, telemetry_for
from .reconcile import Reconciler, Recovery, watchlist_for
from .rest import REQUEST_TIMEOUT, check_account_sid, rest_client
from .security import RefusalLog, RequestVerifier, SharedKey, load_credentials
from .security.credentials import AuthTokens
from .stores import Store, StoreUnavailable

if TYPE_CHECKING:
    from twilio.rest import Client

    from .console import Console

__all__ = ["ConfigurationError", "TwilioEvents"]

logger = logging.getLogger("twilio_events")


class TwilioEvents:
    """An ASGI app that validates Twilio's callbacks and runs the handler for each status."""

    def __init__(
        self,
        *,
        auth_token: AuthTokens | None = None,
        account_sid: str | None = None,
        shared_keys: Mapping[str, str | SharedKey] | None = None,
        basic_auth: tuple[str, str] | None = None,
        digest_auth: tuple[str, str] | None = None,
        validate_signature: bool | None = None,
        public_url: str | None = None,
        trust_forwarded_headers: bool = False,
        path: str = "/",
        max_body_size: int = 64 * 1024,
        event_streams_path: str | None = "events",
        listeners: Sequence[Listener] | None = None,
        delivery: Literal["inline", "durable"] | None = None,
        store: Store | str | None = None,
        ordering: Literal["monotonic"] | None = None,
        max_attempts: int = 5,
        retry_delay: float = 1.0,
        workers: int = 64,
        dedupe_window: float | timedelta = timedelta(hours=24),
        lease: float = 30.0,
        consumer: str | None = None,
        shutdown_grace: float = 30.0,
        api_base_url: str | None = None,
        rest_timeout: float = REQUEST_TIMEOUT,
        reconcile_after: float | timedelta | None = None,
        dedupe_by_status: bool = False,
        visibility_timeout: float | None = None,
        read_timeout: float | None = None,
        max_connections: int | None = None,
        keep_alive_timeout: int | None = None,
        console: bool | None = None,
        console_auth: tuple[str, str] | None = None,
        metrics: bool | None = None,
        tracing: bool | None = None,
    ) -> None:
        """Configure the app.

        auth_token / account_sid: default to TWILIO_AUTH_TOKEN / TWILIO_ACCOUNT_SID; with an account SID,
            callbacks for any other account are refused (403). Several tokens for a rotation: a list,
            primary first, or "primary,secondary" (and TWILIO_SECONDARY_AUTH_TOKEN); subaccounts: a mapping
            {AccountSid: token or tokens}, and callbacks of any other account are refused. Without any
            credential (and validation on) the app refuses to start, with a message that says what to set.
        shared_keys: {key_id: secret or SharedKey(secret, algorithm)} of the Webhooks configuration API
            (default TWILIO_EVENTS_SHARED_KEYS, "id=secret,id=secret"; algorithm HMAC_SHA256).
        basic_auth / digest_auth: (user, password) Twilio must log in with, by HTTP Basic or Digest
            authentication: the user info of the URL configured in Twilio (default
            TWILIO_EVENTS_BASIC_AUTH / TWILIO_EVENTS_DIGEST_AUTH, "user:password").
        validate_signature: check X-Twilio-Signature (default True, or TWILIO_EVENTS_VALIDATE_SIGNATURE).
        public_url: the base URL Twilio calls (e.g. "https://abc.ngrok.app"), used for signatures.
        trust_forwarded_headers: rebuild the public URL from Forwarded / X-Forwarded-* headers.
        path: where the webhook route lives inside this app.
        max_body_size: larger bodies are refused with 413 (an Event Streams batch may be 16 times larger).
        event_streams_path: where an Event Streams webhook sink posts, below `path` ("events": /events
            when path is "/"); None receives no Event Streams.
        listeners: where `run()` serves; default one `Listener(port=8090, name="twilioListener")`
            (the ports of TWILIO_EVENTS_PORT when set), on every interface; on 127.0.0.1 only when
            signatures are not validated.
        delivery: "inline" runs the handler before answering; "durable" commits the event to `store`,
            answers at once and runs it in workers, retrying failures up to `max_attempts` times
            (default: TWILIO_EVENTS_DELIVERY, else "inline").
        store: a Store or URL (`sqlite:///file.db`, `redis://host:6379/0`, `memory://`); default
            TWILIO_EVENTS_STORE, else memory for inline (de-dup in one process) and
            `sqlite:///twilio_events.db` for durable.
        ordering: "monotonic" skips callbacks whose status comes before one already handled for the SID.
        max_attempts / retry_delay: durable retries; the n-th waits about retry_delay * 2**(n-1) s (jittered).
        workers / shutdown_grace: durable handlers run at once in each process (server processes are
            `run(processes=)`, `twilio-events run --workers`), and how long running handlers may finish
            at shut-down (seconds).
        lease: seconds a durable event stays held by a process that stops extending it (a dead one);
            a live process extends the leases of what it runs every lease / 3 s.
        consumer: the name this process holds events under (default: the host name), made unique on this
            machine with a slot number (`NAME:1`, `NAME:2`, ...); a restarted process takes back at once
            the events its slot still held.
        visibility_timeout: the former name of `lease`.
        dedupe_window: how long a handled callback's duplicates are recognised.
        reconcile_after: when set, a call or message whose last handled status is not final this long
            is checked on the REST API, and a later status Twilio reports is delivered (`recovered`).
        dedupe_by_status: handle each status of a call or message once, whichever way it arrives
            (callback, Event Streams, REST API), instead of once per callback.
        api_base_url / rest_timeout: where `app.client` sends REST calls (default Twilio's API, or
            TWILIO_EVENTS_API_BASE_URL) and how long each may take (seconds).
        read_timeout / max_connections / keep_alive_timeout: what `run()` (and `twilio-events run`) bound:
            the seconds a client has to send a whole request (10), the connections open at once in the
            process (1000), the seconds an idle connection stays open (5); default
            TWILIO_EVENTS_READ_TIMEOUT, TWILIO_EVENTS_MAX_CONNECTIONS, TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT.
        console / console_auth: serve the live console at `{path}console/` (default TWILIO_EVENTS_CONSOLE,
            else off), to loopback clients only unless (user, password) are set for HTTP Basic
            authentication (default TWILIO_EVENTS_CONSOLE_AUTH, "user:password").
        metrics: serve Prometheus metrics at `<path>metrics` (default TWILIO_EVENTS_METRICS; needs the
            `prometheus` extra).
        tracing: an OpenTelemetry span per callback (default TWILIO_EVENTS_TRACING; needs the `otel` extra,
            and the SDK of your choice to keep the spans).
        """
        try:
            credentials, self.account_sid, self.auth_token = load_credentials(
                auth_token, account_sid, shared_keys, basic_auth, digest_auth=digest_auth
            )
            if self.account_sid:
                check_account_sid(self.account_sid)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.auth_token_given = auth_token is not None
        """True when the token was passed to the constructor, not read from the environment."""
        if validate_signature is None:
            validate_signature = env_flag(VALIDATE_SIGNATURE_ENV, default=True)
        self.validate_signature = validate_signature
        self.path = "/" + path.strip("/") if path.strip("/") else "/"
        self.max_body_size = max_body_size
        try:
            self.limits = ServerLimits.resolve(read_timeout, max_connections, keep_alive_timeout)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        # without signature validation anyone could fake callbacks: listen on this machine only by default
        host = "0.0.0.0" if validate_signature else "127.0.0.1"
        self.listeners: list[Listener] = list(listeners) if listeners else default_listeners(host)
        self.call, self.sms, self.recording = CallChannel(), SmsChannel(), RecordingChannel()
        self.transcription, self.conference = TranscriptionChannel(), ConferenceChannel()
        self.amd, self.streams = AmdChannel(), StreamsChannel()
        every: list[Channel[Any, Any]] = [self.call, self.sms, self.recording, self.transcription]
        every += [self.conference, self.amd, self.streams]
        self.channels: dict[str, Channel[Any, Any]] = {channel.name: channel for channel in every}
        """Channel name -> channel, for every kind of request the app receives."""
        mode = delivery_mode(delivery)
        if ordering not in (None, "monotonic"):
            raise ConfigurationError(f"ordering must be None or 'monotonic', not {ordering!r}")
        self.delivery = mode
        self.ordering = ordering
        self.store = store_for(mode, store)
        window = float(seconds(dedupe_window) or 0.0)
        settings = DeliverySettings(
            durable=mode == "durable",
            ordering=ordering,
            dedupe_window=window,
            retry=RetryPolicy(max_attempts=max_attempts, base_delay=retry_delay),
            workers=workers,
            lease=lease if visibility_timeout is None else visibility_timeout,
            shutdown_grace=shutdown_grace,
            status_keys="all" if dedupe_by_status else "final" if reconcile_after is not None else None,
            consumer=consumer,
        )
        self.reconcile_after = seconds(reconcile_after)
        reconciler = None
        if self.reconcile_after is not None:
            watchlist = watchlist_for(self.store)
            after, client = self.reconcile_after, lambda: self.client
            reconciler = Reconciler(watchlist, self.store, client, after=after, max_age=window)
        try:
            telemetry = telemetry_for(metrics, tracing)
        except MissingExtra as exc:
            raise ConfigurationError(str(exc)) from None
        self._dispatcher = Dispatcher(self.channels, self.store, settings, reconciler, telemetry)
        self._lifecycle = Lifecycle(self._start, self._dispatcher.stop)
        self._client: Client | None = None
        self._rest_settings = (api_base_url, rest_timeout)
        self._mounted_at = ""
        self._credentials = credentials  # without any, and validation on, the app refuses to start
        if not validate_signature:
            warn_validation_off()
        self._endpoint = Endpoint(
            path=self.path,
            channels=self.channels,
            dispatcher=self._dispatcher,
            verifier=RequestVerifier(credentials, validate_signature=validate_signature),
            refusals=RefusalLog(),
            public_url=check_public_url(public_url),
            trust_forwarded_headers=trust_forwarded_headers,
            max_body_size=max_body_size,
            streams_path=below(self.path, event_streams_path),
            read_timeout=self.limits.read_timeout,
            telemetry=telemetry,
        )
        self._asgi: ASGIApp = self._endpoint
        self.console: Console | None = None
        """The live console, when enabled (`console=True` or `enable_console()`)."""
        if console or (console is None and env_flag(CONSOLE_ENV, default=False)):
            self.enable_console(console_auth)

    def __repr__(self) -> str:
        return (
            f"TwilioEvents(path={self.path!r}, delivery={self.delivery!r}, "
            f"validate_signature={self.validate_signature})"
        )

    @property
    def public_url(self) -> str | None:
        """The base URL Twilio calls, used for signatures (None: the URL the request arrived at)."""
        return self._endpoint.public_url

    @public_url.setter
    def public_url(self, value: str | None) -> None:
        self._endpoint.public_url = check_public_url(value)

    @property
    def event_streams_path(self) -> str | None:
        """Where an Event Streams sink posts, below `path` ("/events"), or None when not received."""
        return self._endpoint.streams_path

    @property
    def trust_forwarded_headers(self) -> bool:
        """True when the public URL is rebuilt from Forwarded / X-Forwarded-* headers."""
        return self._endpoint.trust_forwarded_headers

    @trust_forwarded_headers.setter
    def trust_forwarded_headers(self, value: bool) -> None:
        self._endpoint.trust_forwarded_headers = value

    def enable_console(self, auth: tuple[str, str] | None = None) -> None:
        """Serve the live console at `{path}console/`: to loopback clients only, unless `auth` (user,
        password; default TWILIO_EVENTS_CONSOLE_AUTH) asks everyone for HTTP Basic credentials."""
        from .console import AppFacts, build_console  # nothing of the console is loaded while it is off

        try:
            facts = AppFacts(self.path, self.delivery, self.validate_signature)
            store = self.store if self.delivery == "durable" else None

            def token_for(account: str | None) -> str | None:  # the tokens of now, when a replay is signed
                return self._credentials.primary_token(account)

            self.console = build_console(self._endpoint, facts, store, token_for, auth)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self._asgi = self.console

    def on_error(self, function: ErrorHook) -> ErrorHook:
        """Register a hook `(event, exc)` for handler errors; what it returns replaces the 500."""
        existing = self._dispatcher.error_handler
        if existing is not None:
            raise ValueError(f"an error hook is already registered: {existing.name}")
        self._dispatcher.error_handler = Handler.wrap(function)
        return function

    @property
    def client(self) -> Client:
        """A `twilio.rest.Client` built on first use from the same credentials, with a timeout per call
        (`rest_timeout`) and `api_base_url` when given; `twilio_events.rest.explain(exc)` words its errors."""
        if self._client is None:
            if not self.account_sid or not self.auth_token:
                raise ConfigurationError(
                    "app.client needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
                    "(or account_sid= and auth_token=)"
                )
            api_base_url, timeout = self._rest_settings
            self._client = rest_client(
                self.account_sid, self.auth_token, api_base_url=api_base_url, timeout=timeout
            )
        return self._client

    def check_configuration(self) -> None:
        """Raise ConfigurationError when the app cannot run: signatures to check and no auth token."""
        if self.validate_signature and not self._credentials.can_verify:
            raise ConfigurationError(NO_TOKEN_MESSAGE)
        if self.reconcile_after is not None and not (self.account_sid and self.auth_token):
            raise ConfigurationError(
                "reconcile_after asks Twilio's REST API, which needs the account's credentials: set "
                "TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or account_sid= and auth_token=)"
            )

    def use_auth_token(self, auth_token: str) -> None:
        """Validate signatures with `auth_token` from now on (tests sign with a token of their own)."""
        self.auth_token = auth_token
        self.auth_token_given = True
        credentials = dataclasses.replace(self._credentials, tokens={None: (auth_token,)})
        self._credentials = credentials
        self._endpoint.verifier = RequestVerifier(credentials, validate_signature=self.validate_signature)
        self._client = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifecycle.serve_lifespan(receive, send)
            return
        endpoint: ASGIApp = self._asgi
        if not self._lifecycle.started:  # mounted without the parent forwarding lifespan events
            self._mounted_at = self._mounted_at or str(scope.get("root_path", ""))
            try:
                await self.startup()
            except StoreUnavailable as exc:
                logger.error("cannot start: the store is unavailable: %s", exc)
            except ConfigurationError as exc:  # never run a callback the app cannot check
                logger.error("cannot start: %s", exc)
                endpoint = refuse(500, "Internal Server Error: the service is not configured")
        if scope["type"] == "http":
            await endpoint(scope, receive, send)
        else:  # a WebSocket handshake gets the answer a GET would: 405 on the webhook path
            await answer_handshake(endpoint, scope, receive, send)

    @contextlib.asynccontextmanager
    async def lifespan(self, parent: object = None) -> AsyncIterator[None]:
        """Start-up and shut-down; usable as a parent app's `lifespan=` when this app is mounted."""
        if parent is not None and parent is not self:
            self._mounted_at = mount_path(parent, self) or self._mounted_at
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        """Open the store (running again what a stopped process left unfinished) and start workers;
        ConfigurationError when signatures are to be validated and no auth token is configured."""
        await self._lifecycle.startup()

    async def shutdown(self) -> None:
        """Let running handlers finish (within shutdown_grace), then close the store."""
        await self._lifecycle.shutdown()

    async def _start(self) -> None:
        self.check_configuration()
        durable_store = self.store if self.delivery == "durable" else None
        log_ready(self.route, self.channels, validated=self.validate_signature, durable_store=durable_store)
        await self._dispatcher.start()

    async def reconcile(self, *, since: float | None = None, dry_run: bool = False) -> list[Recovery]:
        """One reconciliation pass now, over the calls and messages last seen within `since` seconds (every
        one due, by default); `dry_run` only reports what Twilio says. Works with the app started or not."""
        if self._dispatcher.reconciler is None:
            raise ConfigurationError("reconciliation is off: set TwilioEvents(reconcile_after=...)")
        return await self._dispatcher.reconcile(since, dry_run=dry_run, started=self._lifecycle.started)

    def run(self, *, log_level: str = "info", graceful_timeout: int = 30, processes: int = 1) -> None:
        """Serve every listener until interrupted, in-flight handlers finishing first: in this process, or
        in `processes` processes sharing the listeners (not `workers`: the handlers each runs at once)."""
        from .serving import run_app  # uvicorn is imported only by a process that serves

        run_app(
            self,
            self.listeners,
            log_level=log_level,
            graceful_timeout=graceful_timeout,
            limits=self.limits,
            processes=processes,
            store_durable=self.store.durable,
        )

    @property
    def route(self) -> str:
        """Where callbacks are received, with the mount point when this app is mounted in another."""
        prefix = self._mounted_at.rstrip("/")
        return prefix + self.path if prefix else self.path

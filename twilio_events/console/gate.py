"""`Console`: the console's routes in front of the endpoint, behind the access check, and the tap on it."""

from __future__ import annotations

import os
from collections.abc import Callable

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import below
from ..http.endpoint import Endpoint, route_path
from ..security.credentials import _user_password as user_password
from ..stores.base import Store
from .access import refusal
from .recorder import Recorder
from .replay import Replay, signing_url
from .routes import SECURITY_HEADERS, AppFacts, ConsoleRoutes, redirect_to_page
from .tap import Tap

CONSOLE_AUTH_ENV = "TWILIO_EVENTS_CONSOLE_AUTH"
CONSOLE_SUBPATH = "console"
"""Where the console lives below the app's path."""


class Console:
    """An ASGI app: the console's page and API below `path`; every other request to the endpoint, tapped."""

    def __init__(
        self,
        endpoint: ASGIApp,
        *,
        path: str,
        callback_paths: Callable[[], tuple[str | None, ...]],
        replay: Callable[[ASGIApp], Replay],
        store: Store | None,
        facts: AppFacts,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.path = path.rstrip("/")
        self.credentials = credentials
        self.recorder = Recorder()
        self.tap = Tap(endpoint, self.recorder, callback_paths, lambda: facts.validating)
        self.routes = ConsoleRoutes(self.recorder, replay(self.tap), store, facts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = route_path(scope) if scope["type"] == "http" else ""
        if route != self.path and not route.startswith(self.path + "/"):
            await self.tap(scope, receive, send)
            return
        refused = refusal(scope, self.credentials)
        if refused is not None:
            refused.headers.update(SECURITY_HEADERS)
            await refused(scope, receive, send)
            return
        request = Request(scope, receive)
        if route == self.path:
            response = redirect_to_page(str(request.url.path))
        else:
            response = await self.routes.respond(request, route[len(self.path) + 1 :])
        await response(scope, receive, send)


def build_console(
    endpoint: Endpoint,
    facts: AppFacts,
    store: Store | None,
    token_for: Callable[[str | None], str | None],
    auth: tuple[str, str] | None,
) -> Console:
    """The console in front of an app's endpoint (`store` when durable); ValueError for bad credentials."""
    credentials = user_password(auth if auth is not None else os.environ.get(CONSOLE_AUTH_ENV, ""), "console")

    def replay(tap: ASGIApp) -> Replay:
        public_url = lambda: endpoint.public_url  # noqa: E731
        trust = lambda: endpoint.trust_forwarded_headers  # noqa: E731
        return Replay(tap, token_for, signing_url(public_url, trust))

    console = Console(
        endpoint,
        path=below(endpoint.path, CONSOLE_SUBPATH) or "/" + CONSOLE_SUBPATH,
        callback_paths=lambda: (endpoint.path, endpoint.streams_path),
        replay=replay,
        store=store,
        facts=facts,
        credentials=credentials,
    )
    endpoint.dispatcher.observe_stored(console.recorder.settle)
    return console

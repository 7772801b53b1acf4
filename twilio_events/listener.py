"""Listeners: where callbacks are received (host, port) and the name their log lines carry."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

LISTENER_SCOPE_KEY = "twilio_events.listener"


@dataclass(frozen=True, slots=True)
class Listener:
    """Where Twilio's callbacks are received: one port, named in every log line it produces."""

    port: int = 8090
    name: str = "twilioListener"
    host: str = "0.0.0.0"

    def url(self, path: str = "/") -> str:
        """The local URL of this listener's webhook route."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}{path}"


class NamedListenerApp:
    """Tags each request's scope with the listener it arrived on, for the app's log lines."""

    def __init__(self, app: ASGIApp, name: str) -> None:
        self.app = app
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope[LISTENER_SCOPE_KEY] = self.name
        await self.app(scope, receive, send)

"""What `twilio-events run` serves: an ASGI app, the TwilioEvents app in it, and where its route is."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.routing import Host, Mount
from starlette.types import ASGIApp

from ..app import TwilioEvents
from ..listener import Listener


@dataclass(slots=True)
class Service:
    """An ASGI app to serve, the TwilioEvents app in it (or None), that app's URL path and the listeners."""

    target: str
    app: ASGIApp
    events: TwilioEvents | None
    path: str = "/"
    listeners: list[Listener] = field(default_factory=lambda: [Listener()])

    @classmethod
    def of(cls, app: ASGIApp, target: str) -> Service:
        """`app`, itself a TwilioEvents app or an app that mounts one (the first found is described)."""
        if isinstance(app, TwilioEvents):
            return cls(target, app, app, app.path, list(app.listeners))
        found = mounted(app)
        if not found:
            return cls(target, app, None)
        events, prefix = found[0]
        return cls(target, app, events, prefix.rstrip("/") + events.path, list(events.listeners))


def mounted(app: object) -> list[tuple[TwilioEvents, str]]:
    """Each TwilioEvents app inside `app` (through mounts, hosts and middleware) with its mount path."""
    found: list[tuple[TwilioEvents, str]] = []
    _walk(app, "", set(), found)
    return found


def reachable(app: object) -> set[int]:
    """The ids of every app and route target reachable from `app`, itself included."""
    seen: set[int] = set()
    _walk(app, "", seen, [])
    return seen


def _walk(node: object, prefix: str, seen: set[int], found: list[tuple[TwilioEvents, str]]) -> None:
    """Collect the TwilioEvents apps under `node`, each visited once."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, TwilioEvents):
        found.append((node, prefix))
        return
    for route in _routes(node):
        if isinstance(route, Mount):
            _walk(route.app, prefix + route.path, seen, found)
        elif isinstance(route, Host):
            _walk(route.app, prefix, seen, found)
    inner = getattr(node, "app", None)  # middleware, and other wrappers of one app
    if callable(inner):
        _walk(inner, prefix, seen, found)


def _routes(node: object) -> list[object]:
    """The routes of a Starlette or FastAPI app or router; none for anything else."""
    try:
        routes = getattr(node, "routes", None)
    except Exception:  # a property of some other object that fails
        return []
    return list(routes) if isinstance(routes, list) else []

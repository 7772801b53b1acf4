"""The console's own routes: the page, its static files, and the JSON it polls and posts to."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response

from ..stores.base import Store, StoreUnavailable
from .recorder import Recorder
from .replay import Replay

ACTION_HEADER = "x-twilio-events-console"
"""Every POST of the page carries it: a form posted by another site cannot, so it cannot act here."""

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}


@dataclass(slots=True)
class AppFacts:
    """What the page's header says about the app: none of it secret."""

    route: str
    delivery: str
    validating: bool


class ConsoleRoutes:
    """Answers one request below the console's path (the access check is done)."""

    def __init__(self, recorder: Recorder, replay: Replay, store: Store | None, facts: AppFacts) -> None:
        self.recorder = recorder
        self.replay = replay
        self.store = store
        self.facts = facts

    async def respond(self, request: Request, below: str) -> Response:
        """The answer to `request`, whose path below the console's is `below` ("" for the page)."""
        method = request.method
        if below == "" and method in ("GET", "HEAD"):
            return self._page()
        if below.startswith("static/") and method in ("GET", "HEAD"):
            return _static(below.removeprefix("static/"))
        if below.startswith("api/"):
            return await self._api(request, below.removeprefix("api/"))
        if below == "" or below.startswith("static/"):
            return PlainTextResponse(
                "Method Not Allowed: the console is a page (GET); Twilio's callbacks go to the webhook path",
                status_code=405,
                headers={**SECURITY_HEADERS, "Allow": "GET, HEAD"},
            )
        return PlainTextResponse("Not Found", status_code=404, headers=SECURITY_HEADERS)

    def _page(self) -> Response:
        facts = self.facts
        page = Template(_read("console.html")).substitute(
            route=html.escape(facts.route),
            delivery=html.escape(facts.delivery),
            validation="signatures checked" if facts.validating else "signature validation OFF",
            durable="true" if self.store is not None else "false",
        )
        return Response(page, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)

    async def _api(self, request: Request, name: str) -> Response:
        """The JSON API: GETs read, POSTs (from the page only) act."""
        if request.method == "POST":
            if request.headers.get(ACTION_HEADER) != "1" or not _same_origin(request):
                return _json({"error": "console actions come from the console page"}, 403)
            body = await request.body()
            try:
                data = json.loads(body or b"{}")
            except ValueError:
                return _json({"error": "the body is not JSON"}, 400)
            if not isinstance(data, dict):
                return _json({"error": "the body is not a JSON object"}, 400)
            return await self._act(name, data)
        if request.method not in ("GET", "HEAD"):
            return _json({"error": "Method Not Allowed"}, 405, {"Allow": "GET, POST"})
        if name == "callbacks":
            since = _int(request.query_params.get("since")) or 0
            rows = [entry.summary() for entry in self.recorder.since(since)]
            return _json({"callbacks": rows})
        if name.startswith("callbacks/"):
            entry = self.recorder.get(_int(name.removeprefix("callbacks/")) or -1)
            if entry is None:
                return _json({"error": "no such callback (the console keeps the latest ones)"}, 404)
            return _json(entry.detail())
        if name.startswith("timeline/"):
            sid = name.removeprefix("timeline/")
            return _json({"sid": sid, "rows": self.recorder.timeline(sid)})
        if name == "inbox":
            return await self._inbox()
        return _json({"error": "Not Found"}, 404)

    async def _act(self, name: str, data: dict[str, Any]) -> Response:
        """replay, inbox/retry, inbox/purge."""
        if name == "replay":
            entry = self.recorder.get(_int(str(data.get("id"))) or -1)
            if entry is None:
                return _json({"error": "no such callback (the console keeps the latest ones)"}, 404)
            try:
                return _json(await self.replay.send(entry, same_token=bool(data.get("same_token"))))
            except ValueError as exc:
                return _json({"error": str(exc)}, 400)
        if name not in ("inbox/retry", "inbox/purge"):
            return _json({"error": "Not Found"}, 404)
        if self.store is None:
            return _json({"error": "the inbox is for durable delivery"}, 409)
        try:
            if name == "inbox/purge":
                return _json({"purged": await self.store.purge_dead()})
            event_id = data.get("id")
            return _json({"retried": await self.store.retry_dead(str(event_id) if event_id else None)})
        except StoreUnavailable as exc:
            return _json({"error": f"the store is unavailable: {exc}"}, 503)

    async def _inbox(self) -> Response:
        """The durable store's counts and dead letters."""
        if self.store is None:
            return _json({"durable": False})
        try:
            stats = await self.store.stats()
            dead = await self.store.dead_letters(100)
        except StoreUnavailable as exc:
            return _json({"durable": True, "error": f"the store is unavailable: {exc}"}, 503)
        letters = [
            {
                "id": event.id,
                "key": event.key,
                "channel": event.channel,
                "attempts": event.attempts,
                "error": event.error_line,  # the traceback stays in the store (`inbox list --dead`)
                "received_at": event.received_at,
                "sid": next((v for k, v in event.params if k in ("CallSid", "MessageSid") and v), ""),
                "status": next((v for k, v in event.params if k in ("CallStatus", "MessageStatus")), ""),
            }
            for event in dead
        ]
        counts = {"queued": stats.queued, "running": stats.running, "dead": stats.dead, **stats.extra}
        return _json({"durable": True, "counts": counts, "dead": letters})


def _same_origin(request: Request) -> bool:
    """True without an Origin header (not a browser's cross-site request), or with this host's own (behind
    a TLS proxy, the scheme may differ from the request's)."""
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host", "")


def _json(data: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() and len(value) < 12 else None


@cache
def _read(name: str) -> str:
    """A file shipped in the package's console/static folder."""
    return files(__package__).joinpath("static", name).read_text(encoding="utf-8")


def _static(name: str) -> Response:
    if name not in STATIC_TYPES:
        return PlainTextResponse("Not Found", status_code=404, headers=SECURITY_HEADERS)
    return Response(_read(name), media_type=STATIC_TYPES[name], headers=SECURITY_HEADERS)


def redirect_to_page(url: str) -> Response:
    """`.../console` without its slash: the page's relative links need it."""
    return RedirectResponse(url + "/", status_code=307, headers=SECURITY_HEADERS)

"""Serving an ASGI app that is not itself a TwilioEvents app (say a FastAPI app that mounts one) the way
`TwilioEvents.run()` serves its own app: every listener in one process, the lifespan run once, and one
Ctrl-C stopping every listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..listener import Listener
from .output import CommandError, one_line

logger = logging.getLogger("twilio_events")


class ServedApp:
    """Any ASGI app in the shape the library's `serve` takes: a path, a proxy setting and a lifespan."""

    def __init__(self, app: ASGIApp, *, path: str, trust_forwarded_headers: bool) -> None:
        """Serve `app`, whose TwilioEvents app receives callbacks at `path`."""
        self.app = app
        self.path = path
        self.trust_forwarded_headers = trust_forwarded_headers
        self.state: dict[str, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass a request on with a copy of the state the lifespan filled, as uvicorn does."""
        if scope["type"] in ("http", "websocket"):
            scope["state"] = self.state.copy()
        await self.app(scope, receive, send)

    def lifespan(self, _parent: object = None) -> contextlib.AbstractAsyncContextManager[None]:
        """The app's ASGI lifespan, run once for every listener."""
        return lifespan(self.app, self.state)


def serve(
    app: ASGIApp,
    listeners: Sequence[Listener],
    *,
    path: str,
    proxy_headers: bool,
    log_level: str,
    processes: int = 1,
) -> None:
    """Serve `app` on every listener until interrupted, in `processes` processes sharing them; `path` is
    where its TwilioEvents app is."""
    from ..serving import configure_logging, fastest_loop
    from ..serving import serve as serve_listeners

    configure_logging(log_level, processes)
    served = ServedApp(app, path=path, trust_forwarded_headers=proxy_headers)

    def serve_here(sockets: Sequence[socket.socket] | None) -> None:
        """Serve in this process; a server process of several reports its failed start itself."""
        try:
            with (
                contextlib.suppress(KeyboardInterrupt),
                asyncio.Runner(loop_factory=fastest_loop()) as runner,
            ):
                runner.run(serve_listeners(served, listeners, log_level=log_level, sockets=sockets))
        except CommandError as exc:
            if sockets is None:
                raise
            print(f"twilio-events: error: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None

    if processes <= 1:
        serve_here(None)
        return
    from ..supervisor import supervise

    code = supervise(listeners, processes, serve_here)
    if code:
        raise SystemExit(code)


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp, state: dict[str, Any]) -> AsyncIterator[None]:
    """Run `app`'s ASGI lifespan around the block (an app without one is served without, as uvicorn does)."""
    to_app: asyncio.Queue[Message] = asyncio.Queue()
    from_app: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"}, "state": state}

    async def run_app() -> None:
        """The app's lifespan call, which lasts as long as the service."""
        await app(scope, to_app.get, from_app.put)

    task = asyncio.create_task(run_app())
    try:
        await to_app.put({"type": "lifespan.startup"})
        started = await _answer(task, from_app)
        if started is None:
            logger.debug("the app does not take part in the ASGI lifespan protocol")
        elif started["type"] == "lifespan.startup.failed":
            message = str(started.get("message") or "").strip()
            logger.debug("the app's start-up failed: %s", message)
            reason = message.splitlines()[-1] if message else "its lifespan reported a failure"
            raise CommandError(f"the app failed to start: {one_line(reason)}")
        yield
        if started is not None:
            await to_app.put({"type": "lifespan.shutdown"})
            await _answer(task, from_app)
    finally:
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _answer(task: asyncio.Task[None], from_app: asyncio.Queue[Message]) -> Message | None:
    """The app's answer to a lifespan event, or None when its lifespan call ended without one."""
    answer = asyncio.ensure_future(from_app.get())
    await asyncio.wait({answer, task}, return_when=asyncio.FIRST_COMPLETED)
    if answer.done():
        return answer.result()
    answer.cancel()
    return None

"""Serving an ASGI app that is not itself a TwilioEvents app (say a FastAPI app that mounts one) on every
listener in one process, as `TwilioEvents.run()` serves its own app: its lifespan runs once, and one
Ctrl-C stops every listener."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..listener import Listener, NamedListenerApp
from .output import CommandError, one_line

logger = logging.getLogger("twilio_events")


class _ListenerServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the group, so one Ctrl-C stops every listener."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Install no signal handlers: `_serve` installs one for every server."""
        yield


class _WithState:
    """Gives each request a copy of the state the lifespan filled, as uvicorn does when it runs it."""

    def __init__(self, app: ASGIApp, state: dict[str, Any]) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with the lifespan's state."""
        if scope["type"] in ("http", "websocket"):
            scope["state"] = self.state.copy()
        await self.app(scope, receive, send)


def serve(
    app: ASGIApp, listeners: Sequence[Listener], *, path: str | None, proxy_headers: bool, log_level: str
) -> None:
    """Serve `app` on every listener until interrupted; `path` is where its TwilioEvents app is, if any."""
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=log_level.upper(), format="%(asctime)s %(levelname)-7s %(name)s: %(message)s"
        )
    with contextlib.suppress(KeyboardInterrupt), asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(app, listeners, path=path, proxy_headers=proxy_headers, log_level=log_level))


async def _serve(
    app: ASGIApp, listeners: Sequence[Listener], *, path: str | None, proxy_headers: bool, log_level: str
) -> None:
    """Run the lifespan once, and a uvicorn server per listener inside it, until a signal stops them."""
    state: dict[str, Any] = {}
    servers = [
        _ListenerServer(
            uvicorn.Config(
                NamedListenerApp(_WithState(app, state), listener.name),
                host=listener.host,
                port=listener.port,
                lifespan="off",  # run once below, not once per listener
                proxy_headers=proxy_headers,
                log_level=log_level,
                access_log=False,
                timeout_graceful_shutdown=30,
            )
        )
        for listener in listeners
    ]

    def stop_all(signum: int = signal.SIGTERM) -> None:
        """Ask every server to finish its requests and stop."""
        for server in servers:
            server.handle_exit(signum, None)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop_all, signum)

    async def serve_one(server: _ListenerServer, listener: Listener) -> bool:
        """Serve one listener; False, with every listener stopped, when it cannot start."""
        try:
            await server.serve()
        except SystemExit:
            logger.error(
                "[%s] could not start on %s:%d; stopping", listener.name, listener.host, listener.port
            )
            stop_all()
            return False
        return True

    async with lifespan(app, state):
        for listener in listeners:
            what = "receiving Twilio callbacks" if path is not None else "serving"
            logger.info("[%s] %s at %s", listener.name, what, listener.url(path or "/"))
        started = await asyncio.gather(
            *(serve_one(s, lst) for s, lst in zip(servers, listeners, strict=True))
        )
    if not all(started):
        raise SystemExit(1)


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp, state: dict[str, Any]) -> AsyncIterator[None]:
    """Run `app`'s ASGI lifespan around the block: start-up before it, shut-down after it. An app that
    does not take part in the lifespan protocol is served without one, as uvicorn does."""
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


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is with uvicorn[standard]), as uvicorn itself would choose."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop

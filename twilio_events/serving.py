"""Serving every listener of an app with uvicorn in one process, or in each of several that share the
listeners (supervisor.py); imported only by `app.run()`.

It knows the app only by what it serves (the `Servable` protocol), so it imports nothing of `app`.
Every listener applies the `ServerLimits` given (the app's, or those of the environment): a read deadline
per request (connections.py), one cap on the connections of the whole process (capacity.py), and the
keep-alive timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import uvicorn
from starlette.types import Receive, Scope, Send

from .capacity import ConnectionCap, descriptors_for
from .config import START_FAILURES, start_failure
from .connections import ServingConfig
from .limits import ServerLimits
from .listener import Listener, NamedListenerApp
from .observability.logging import configure_root, json_logs


def fastest_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (it is with uvicorn[standard]), as uvicorn itself would choose."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


class Servable(Protocol):
    """What `serve` needs of an app: the ASGI callable, its route, its proxy setting and its lifespan."""

    path: str
    trust_forwarded_headers: bool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None: ...

    def lifespan(self, _parent: object = None) -> AbstractAsyncContextManager[None]: ...


logger = logging.getLogger("twilio_events")


def configure_logging(log_level: str, processes: int = 1) -> None:
    """Log lines with a time and a level, and the PID when several processes share the output, unless the
    program configured logging itself."""
    name = "%(name)s[%(process)d]" if processes > 1 else "%(name)s"
    configure_root(log_level, f"%(asctime)s %(levelname)-7s {name}: %(message)s")  # or JSON lines


class _ListenerServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the group, so one Ctrl-C stops every listener."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def run_app(
    app: Servable,
    listeners: Sequence[Listener],
    *,
    log_level: str = "info",
    graceful_timeout: int = 30,
    limits: ServerLimits | None = None,
    processes: int = 1,
    store_durable: bool = True,
) -> None:
    """`serve` in a fresh event loop (uvloop when installed) until interrupted, in this process or in
    `processes` processes sharing the listeners (supervisor.py); a failed start (or process) exits 1."""
    configure_logging(log_level, processes)
    serve_here = functools.partial(
        _run_here, app, listeners, log_level=log_level, graceful_timeout=graceful_timeout, limits=limits
    )
    if processes <= 1:
        serve_here(None)
        return
    from .supervisor import per_process_dedupe, supervise

    warning = per_process_dedupe(store_durable, processes)
    if warning:
        logger.warning(warning)
    code = supervise(listeners, processes, serve_here)
    if code:
        raise SystemExit(code)


def _run_here(
    app: Servable,
    listeners: Sequence[Listener],
    sockets: Sequence[socket.socket] | None,
    **options: Any,
) -> None:
    """`serve` in this process, on `sockets` when given (bound by a supervisor), else binding its own."""
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=fastest_loop()) as runner,
        ):
            runner.run(serve(app, listeners, sockets=sockets, **options))
    except START_FAILURES as exc:
        logger.error("cannot start: %s", start_failure(exc))
        raise SystemExit(1) from None


async def serve(
    app: Servable,
    listeners: Sequence[Listener],
    *,
    log_level: str = "info",
    graceful_timeout: int = 30,
    limits: ServerLimits | None = None,
    sockets: Sequence[socket.socket] | None = None,
) -> None:
    """Serve `app` on every listener until SIGINT/SIGTERM, letting in-flight handlers finish; `limits`
    default to those of the environment (TWILIO_EVENTS_READ_TIMEOUT, ...); `sockets`, one per listener,
    are already bound (by a supervisor)."""
    if limits is None:
        try:
            limits = ServerLimits.resolve()
        except ValueError as exc:
            logger.error("cannot start: %s", exc)
            raise SystemExit(1) from None
    cap = ConnectionCap(descriptors_for(limits.max_connections))
    # JSON lines: uvicorn's own loggers then write through the root logger's JSON handler too
    log_config = None if json_logs() else uvicorn.config.LOGGING_CONFIG
    servers = [
        _ListenerServer(
            ServingConfig(
                NamedListenerApp(app, listener.name),
                limits=limits,
                cap=cap,
                listener=listener.name,
                host=listener.host,
                port=listener.port,
                lifespan="off",  # the app's lifespan runs once below, not once per listener
                # uvicorn would otherwise apply X-Forwarded-Proto from 127.0.0.1 to the scheme the app
                # signs over, even with trust_forwarded_headers off.
                proxy_headers=app.trust_forwarded_headers,
                log_level=log_level,
                log_config=log_config,
                access_log=False,  # the app logs each callback with its listener's name
                timeout_graceful_shutdown=graceful_timeout,
            )
        )
        for listener in listeners
    ]

    def stop_all(signum: int = signal.SIGTERM) -> None:
        for server in servers:
            server.handle_exit(signum, None)

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop_all, signum)

    async def serve_one(server: _ListenerServer, listener: Listener, index: int) -> bool:
        try:
            await server.serve(sockets=None if sockets is None else [sockets[index]])
        except SystemExit:  # uvicorn exits when it cannot bind; stop the others and report it once
            logger.error(
                "[%s] could not start on %s:%d; stopping", listener.name, listener.host, listener.port
            )
            stop_all()
            return False
        return True

    async with app.lifespan():
        for listener in listeners:
            logger.info("[%s] receiving Twilio callbacks at %s", listener.name, listener.url(app.path))
        logger.info("connection limits: %s", limits.describe())
        started = await asyncio.gather(
            *(serve_one(s, lst, i) for i, (s, lst) in enumerate(zip(servers, listeners, strict=True)))
        )
    if not all(started):
        raise SystemExit(1)

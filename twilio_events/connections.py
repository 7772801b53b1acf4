"""Bounding what one client can hold under uvicorn: a read deadline per request, a cap on connections.

uvicorn closes a connection only when it sits idle after an answer (`timeout_keep_alive`); nothing
bounds the time a client takes to send a request head or body, so a client that connects and sends
nothing, or stalls in its body, keeps its socket for as long as it likes. This module adds both bounds
at the level that sees them, the connection, by extending uvicorn's HTTP protocols (httptools and h11):

- The read deadline: a timer starts when a connection opens, and again when the first byte of a later
  request arrives, and stops when a whole request (head and body) is in hand. If it fires first, the
  connection is closed (the app, waiting in `receive()`, sees a disconnect). The deadline is not moved
  by each byte, so a client trickling a byte at a time gains nothing; a handler's own time is never
  counted, and idle time between requests is left to uvicorn's `timeout_keep_alive`.
- The cap: a process serves at most `max_connections` connections at once, over all its listeners.
  A connection beyond it is answered 503 and closed at once, before anything is read, so it holds
  neither a slot nor a file descriptor; a WARNING says so, at most every 10 s with a count.

uvicorn's own `limit_concurrency` is not used: it still accepts and keeps every connection, and answers
503 only to requests whose head has arrived, so idle clients holding the slots would make it refuse
Twilio's callbacks rather than themselves.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any, Literal, Protocol

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .limits import ServerLimits

logger = logging.getLogger("twilio_events")

Parser = Literal["auto", "httptools", "h11"]

REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: text/plain; charset=utf-8\r\n"
    b"content-length: 67\r\n"
    b"connection: close\r\n"
    b"\r\n"
    b"Service Unavailable: too many open connections, try again shortly\n"
)
WARNING_INTERVAL = 10.0
"""Seconds between two warnings that the cap refuses connections."""
RESERVED_DESCRIPTORS = 64
"""File descriptors kept for the store, logs and the listening sockets beside client connections."""


class ConnectionCap:
    """Counts the connections open in this process; refuses (and reports) those beyond `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._refused = 0
        self._next_warning = 0.0

    def admit(self, listener: str) -> bool:
        """Take a slot for a new connection; False when all are taken."""
        if self.open < self.limit:
            self.open += 1
            return True
        self._refused += 1
        now = time.monotonic()
        if now >= self._next_warning:
            logger.warning(
                "[%s] connection limit reached: %d connections open (max_connections=%d); refused %d new "
                "connection(s) with 503 since the last warning",
                listener,
                self.open,
                self.limit,
                self._refused,
            )
            self._refused = 0
            self._next_warning = now + WARNING_INTERVAL
        return False

    def release(self) -> None:
        """Give back the slot of a connection that closed (or left HTTP for a WebSocket)."""
        self.open -= 1


class ServingConfig(uvicorn.Config):
    """A uvicorn configuration whose HTTP protocol applies `limits`, sharing `cap` with other listeners."""

    def __init__(
        self,
        app: Any,
        *,
        limits: ServerLimits,
        cap: ConnectionCap,
        listener: str = "asgi",
        parser: Parser = "auto",
        **options: Any,
    ) -> None:
        super().__init__(
            app, http=protocol_class(parser), timeout_keep_alive=limits.keep_alive_timeout, **options
        )
        self.limits = limits
        self.cap = cap
        self.listener = listener


@functools.cache
def protocol_class(parser: Parser) -> type[asyncio.Protocol]:
    """The bounded protocol on uvicorn's httptools parser ("auto" when installed) or on h11."""
    if parser != "h11":
        try:
            from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        except ImportError:
            if parser == "httptools":
                raise
        else:

            class BoundedHttpToolsProtocol(_Bounded, HttpToolsProtocol):
                """uvicorn's httptools protocol with the read deadline and the connection cap."""

                def on_response_complete(self) -> None:
                    super().on_response_complete()
                    self._after_answer(self.cycle)

                def handle_websocket_upgrade(self) -> None:
                    self._hand_over()
                    super().handle_websocket_upgrade()

                def _current(self) -> _Cycle | None:
                    return self.cycle

            return BoundedHttpToolsProtocol
    return BoundedH11Protocol


def descriptors_for(limit: int) -> int:
    """`limit`, or fewer when the process may not open that many files; raises the soft limit if it can."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to check
        return limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limit + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(1, soft - RESERVED_DESCRIPTORS)
        logger.warning(
            "max_connections=%d does not fit the process's %d file descriptors (ulimit -n): serving at most "
            "%d connections",
            limit,
            soft,
            fitted,
        )
        return fitted
    return limit


class _Cycle(Protocol):
    """What the bounds read of uvicorn's request-response cycle (both parsers have these)."""

    more_body: bool
    response_complete: bool


class _Bounded(asyncio.Protocol):
    """The read deadline and the connection slot, mixed in before one of uvicorn's HTTP protocols."""

    config: uvicorn.Config
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    client: tuple[str, int] | None

    _deadline: asyncio.TimerHandle | None = None
    _cap: ConnectionCap | None = None
    _holds_slot = False
    _handed_over = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        config = self.config
        if not isinstance(config, ServingConfig):
            return
        if not config.cap.admit(config.listener):
            self._handed_over = True  # nothing more is read from this connection
            self.transport.write(REFUSAL)
            self.transport.close()
            return
        self._cap, self._holds_slot = config.cap, True
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self._handed_over:
            return
        super().data_received(data)
        if self._handed_over:  # upgraded to a WebSocket meanwhile
            return
        cycle = self._current()
        if cycle is not None and not cycle.more_body and not cycle.response_complete:
            self._stop_deadline()  # a whole request is in hand: its handler's time is not counted
        else:
            self._start_deadline()  # a head, a body or the next request is still on its way

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._stop_deadline()
        self._release()

    def _after_answer(self, cycle: _Cycle | None) -> None:
        """After an answer: a pipelined request still sending its body keeps the deadline running;
        otherwise the connection is idle, which uvicorn's keep-alive timeout bounds."""
        if self._handed_over:
            return
        if cycle is not None and cycle.more_body and not cycle.response_complete:
            self._start_deadline()
        else:
            self._stop_deadline()

    def _hand_over(self) -> None:
        """The connection leaves this protocol for uvicorn's WebSocket one, which answers the app's 405."""
        self._handed_over = True
        self._stop_deadline()
        self._release()

    def _current(self) -> _Cycle | None:
        """The request-response cycle of the latest request whose head arrived."""
        raise NotImplementedError

    def _start_deadline(self) -> None:
        config = self.config
        if self._deadline is None and isinstance(config, ServingConfig):
            self._deadline = self.loop.call_later(config.limits.read_timeout, self._expire)

    def _stop_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        transport = self.transport
        if transport.is_closing():
            return
        config = self.config
        assert isinstance(config, ServingConfig)
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        logger.info(
            "[%s] closed the connection from %s: no whole request within %g s (read_timeout)",
            config.listener,
            client,
            config.limits.read_timeout,
        )
        if transport.get_write_buffer_size():
            transport.abort()  # a client that neither sends nor reads does not hold the socket either
        else:
            transport.close()

    def _release(self) -> None:
        if self._holds_slot and self._cap is not None:
            self._holds_slot = False
            self._cap.release()


class BoundedH11Protocol(_Bounded, H11Protocol):
    """uvicorn's h11 protocol with the read deadline and the connection cap."""

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._after_answer(self.cycle)

    def handle_websocket_upgrade(self, event: Any) -> None:
        self._hand_over()
        super().handle_websocket_upgrade(event)

    def _current(self) -> _Cycle | None:
        return self.cycle

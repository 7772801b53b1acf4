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
- The head size: h11 refuses (400) a request head still unfinished past 16 KiB; httptools has no limit
  of its own, so the httptools protocol here refuses (431) a head over MAX_HEAD_SIZE, the same 16 KiB:
  a head arriving fast enough to beat the deadline could otherwise fill the memory.
- The cap: a process serves at most `max_connections` connections at once, over all its listeners.
  A connection beyond it is answered 503 and closed at once, before anything is read, so it holds
  neither a slot nor a file descriptor; a WARNING says so, at most every 10 s with a count
  (capacity.py).

uvicorn's own `limit_concurrency` is not used: it still accepts and keeps every connection, and answers
503 only to requests whose head has arrived, so idle clients holding the slots would make it refuse
Twilio's callbacks rather than themselves.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
from typing import Any, Literal, Protocol

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .capacity import ConnectionCap
from .limits import ServerLimits

logger = logging.getLogger("twilio_events")

Parser = Literal["auto", "httptools", "h11"]


def plain_response(status: int, text: str) -> bytes:
    """A whole HTTP/1.1 response with a one-line text body, closing the connection."""
    body = (text + "\n").encode("utf-8")
    head = (
        f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


MAX_HEAD_SIZE = 16 * 1024
"""Bytes of request line and headers accepted, as h11's default; Twilio's heads take about 1 KiB."""
REFUSAL = plain_response(503, "Service Unavailable: too many open connections, try again shortly")
HEAD_TOO_LARGE = plain_response(
    431, f"Request Header Fields Too Large: the request head exceeds {MAX_HEAD_SIZE} bytes"
)


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
                """uvicorn's httptools protocol with the read deadline, the connection cap and a limit
                on the size of a request head."""

                _head_size = 0
                _head_too_large = False

                def on_message_begin(self) -> None:
                    super().on_message_begin()
                    self._head_size = 0

                def on_url(self, url: bytes) -> None:
                    self._count_head(len(url))
                    super().on_url(url)

                def on_header(self, name: bytes, value: bytes) -> None:
                    self._count_head(len(name) + len(value) + 4)
                    super().on_header(name, value)

                def _count_head(self, size: int) -> None:
                    self._head_size += size
                    if self._head_size > MAX_HEAD_SIZE:
                        self._head_too_large = True
                        raise ValueError("request head too large")  # stops the parser: see below

                def send_400_response(self, msg: str) -> None:
                    """uvicorn's answer to a parser error, which a head too large is made to be."""
                    if not self._head_too_large:
                        super().send_400_response(msg)
                        return
                    self.transport.write(HEAD_TOO_LARGE)
                    self.transport.close()

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

"""Starting and stopping an app once, whichever way it is asked: the ASGI lifespan protocol, a parent app's
`lifespan=`, `app.run()`, or the first request of an app mounted without lifespan events."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from starlette.types import Receive, Send

from .config import START_FAILURES, start_failure

logger = logging.getLogger("twilio_events")


class Lifecycle:
    """Runs `start` once until `stop`, one caller at a time on each event loop (an app may start again in
    a new loop, as tests do)."""

    def __init__(self, start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]]) -> None:
        self._start = start
        self._stop = stop
        self.started = False
        self._lock_of_loop: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    async def startup(self) -> None:
        """Start unless started; what `start` raises (ConfigurationError, StoreUnavailable) propagates."""
        async with self._lock():
            if not self.started:
                await self._start()
                self.started = True

    async def shutdown(self) -> None:
        """Stop when started."""
        async with self._lock():
            if self.started:
                self.started = False
                await self._stop()

    async def serve_lifespan(self, receive: Receive, send: Send) -> None:
        """The ASGI lifespan protocol: start-up (failing with its reason in one line), then shut-down."""
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            await self.startup()
        except START_FAILURES as exc:
            logger.error("cannot start: %s", start_failure(exc))
            await send({"type": "lifespan.startup.failed", "message": start_failure(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        await self.shutdown()
        await send({"type": "lifespan.shutdown.complete"})

    def _lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock_of_loop is None or self._lock_of_loop[0] is not loop:
            self._lock_of_loop = (loop, asyncio.Lock())
        return self._lock_of_loop[1]

"""The worker pool: takes stored events from the store and runs them, a bounded number at a time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from ..stores.base import Store, StoredEvent, StoreUnavailable

logger = logging.getLogger("twilio_events")


class WorkerPool:
    """Runs stored events, at most `workers` at a time, claiming as many as there are free slots.

    Claiming in batches and completing concurrently lets a store group its commits (one SQLite
    transaction for many events) instead of paying one round trip and one commit per event.
    """

    def __init__(
        self,
        store: Store,
        run: Callable[[StoredEvent], Coroutine[Any, Any, None]],
        *,
        workers: int,
        consumer: str,
        visibility_timeout: float,
        poll_interval: float = 0.2,
    ) -> None:
        self._store = store
        self._run = run
        self._size = workers
        self._consumer = consumer
        self._visibility_timeout = visibility_timeout
        self._poll_interval = poll_interval
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._fetcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    @property
    def started(self) -> bool:
        """True once `start()` ran."""
        return self._fetcher is not None

    def start(self) -> None:
        """Start taking events on the running loop."""
        self._stopping = False
        self._wake = asyncio.Event()  # made here: it belongs to the loop the workers run on
        self._fetcher = asyncio.create_task(self._fetch(self._wake))

    def notify(self) -> None:
        """An event was just queued, or a slot freed: look for work now rather than at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self, grace: float) -> None:
        """Stop taking events; let running handlers finish within `grace` s, then cancel them."""
        self._stopping = True
        if self._fetcher is not None:
            self._fetcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._fetcher
            self._fetcher = None
        if self._running:
            logger.info("waiting up to %.0f s for %d running handler(s) to finish", grace, len(self._running))
            _, pending = await asyncio.wait(self._running, timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
                logger.warning(
                    "%d handler(s) still running after %.0f s: cancelled; their events run again later",
                    len(pending),
                    grace,
                )

    async def _fetch(self, wake: asyncio.Event) -> None:
        while not self._stopping:
            free = self._size - len(self._running)
            wake.clear()  # before claiming: a notify() during the claim must not be lost
            events: list[StoredEvent] = []
            if free > 0:
                try:
                    events = await self._store.claim(self._consumer, free, self._visibility_timeout)
                except StoreUnavailable as exc:
                    logger.error("workers cannot reach the store: %s", exc)
                    await asyncio.sleep(1.0)
                    continue
                except Exception as exc:  # never let the workers die quietly: log, pause, go on
                    logger.error("workers could not take events from the store", exc_info=exc)
                    await asyncio.sleep(1.0)
                    continue
            for event in events:
                task = asyncio.create_task(self._run(event))
                self._running.add(task)
                task.add_done_callback(self._finished)
            if not events or len(events) == free:
                # idle, or every slot busy: wait for a new event, a free slot, or the next poll
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._poll_interval)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self.notify()
        if not task.cancelled() and task.exception() is not None:
            logger.error("a worker failed unexpectedly", exc_info=task.exception())

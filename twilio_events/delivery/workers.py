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
    transaction, one Redis call for many events) instead of paying one round trip and one commit per event.

    Each claim holds its events under a lease of `lease` seconds; while they run, a heartbeat extends the
    leases of all of them every `lease / 3` s with one store call, so a handler slower than the lease is
    never run twice. When this process stops extending (it died, or the store was out of reach for longer
    than the lease), any process may take the events over; a worker that lost its lease that way cannot
    record an outcome: completion, retry and dead letter raise LeaseLost, the outcome is dropped (and
    logged), and the event runs again under its new holder.
    """

    def __init__(
        self,
        store: Store,
        run: Callable[[StoredEvent], Coroutine[Any, Any, None]],
        *,
        workers: int,
        lease: float,
        poll_interval: float = 0.2,
    ) -> None:
        if lease <= 0:
            raise ValueError(f"the lease must be a positive number of seconds, not {lease!r}")
        self._store = store
        self._run = run
        self._size = workers
        self._consumer = ""
        self._lease = lease
        self._poll_interval = poll_interval
        self._wake: asyncio.Event | None = None
        self._stopping = False
        self._fetcher: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._running: dict[asyncio.Task[None], StoredEvent] = {}

    @property
    def started(self) -> bool:
        """True once `start()` ran."""
        return self._fetcher is not None

    def start(self, consumer: str) -> None:
        """Start taking events on the running loop, holding them as `consumer`."""
        self._consumer = consumer
        self._stopping = False
        self._wake = asyncio.Event()  # made here: it belongs to the loop the workers run on
        self._fetcher = asyncio.create_task(self._fetch(self._wake))
        self._heartbeat = asyncio.create_task(self._extend_leases())

    def notify(self) -> None:
        """An event was just queued, or a slot freed: look for work now rather than at the next poll."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self, grace: float) -> None:
        """Stop taking events; let running handlers finish within `grace` s, then cancel them."""
        self._stopping = True
        await _cancel(self._fetcher)
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
        await _cancel(self._heartbeat)  # last: the leases of running handlers are kept through the grace
        self._heartbeat = None

    async def _fetch(self, wake: asyncio.Event) -> None:
        while not self._stopping:
            free = self._size - len(self._running)
            wake.clear()  # before claiming: a notify() during the claim must not be lost
            events: list[StoredEvent] = []
            if free > 0:
                try:
                    events = await self._store.claim(self._consumer, free, self._lease)
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
                self._running[task] = event
                task.add_done_callback(self._finished)
            if not events or len(events) == free:
                # idle, or every slot busy: wait for a new event, a free slot, or the next poll
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), self._poll_interval)

    async def _extend_leases(self) -> None:
        """The heartbeat: every lease / 3 s, extend the leases of every running event in one store call."""
        warned: set[str] = set()
        while True:
            await asyncio.sleep(self._lease / 3)
            running = list(self._running.values())
            if not running:
                continue
            try:
                lost = await self._store.extend_leases(self._consumer, running, self._lease)
            except Exception as exc:  # StoreUnavailable or another failure: try again at the next beat
                logger.error("could not extend the leases of %d running event(s): %s", len(running), exc)
                continue
            still_running = {event.id for event in self._running.values()}  # not those that just finished
            warned.intersection_update(still_running)
            for event in running:
                if event.id in lost and event.id in still_running and event.id not in warned:
                    warned.add(event.id)
                    logger.warning(
                        "%s: its lease ran out and another worker may run it; this run's outcome will be "
                        "dropped",
                        event.key,
                    )

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self.notify()
        if not task.cancelled() and task.exception() is not None:
            logger.error("a worker failed unexpectedly", exc_info=task.exception())


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

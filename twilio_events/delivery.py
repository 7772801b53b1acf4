"""Delivery rules: Twilio's lifecycles for ordering, retry back-off, and the workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from .events import CallStatus, SmsStatus
from .stores.base import StatusMark, Store, StoredEvent, StoreUnavailable

logger = logging.getLogger("twilio_events")

# Where each status stands in Twilio's documented lifecycles; a higher rank comes later.
_CALL_RANKS: dict[str, int] = {
    CallStatus.QUEUED: 0,
    CallStatus.INITIATED: 1,
    CallStatus.RINGING: 2,
    CallStatus.IN_PROGRESS: 3,
}
_CALL_FINAL_RANK = 4  # completed, busy, failed, no-answer, canceled
_SMS_RANKS: dict[str, int] = {
    SmsStatus.ACCEPTED: 0,
    SmsStatus.SCHEDULED: 0,
    SmsStatus.RECEIVING: 0,
    SmsStatus.QUEUED: 1,
    SmsStatus.SENDING: 2,
    SmsStatus.SENT: 3,
    SmsStatus.PARTIALLY_DELIVERED: 4,
    SmsStatus.DELIVERED: 4,
    SmsStatus.READ: 5,
}
_SMS_FINAL_RANK = 6  # failed, undelivered, canceled, received; read is final too


def status_mark(channel: str, status: str, sequence: int | None) -> StatusMark | None:
    """Where `status` stands in its channel's lifecycle, or None for a status Twilio does not document."""
    if channel == "call":
        if status in _CALL_RANKS:
            return StatusMark(status, (_CALL_RANKS[status], sequence or 0), final=False)
        if status in CallStatus._value2member_map_:
            return StatusMark(status, (_CALL_FINAL_RANK, sequence or 0), final=True)
        return None
    if status in _SMS_RANKS:
        return StatusMark(status, (_SMS_RANKS[status], 0), final=status == SmsStatus.READ)
    if status in SmsStatus._value2member_map_:
        return StatusMark(status, (_SMS_FINAL_RANK, 0), final=True)
    return None


def is_regression(previous: StatusMark | None, mark: StatusMark | None) -> bool:
    """True when `mark` comes before (or equals) what was handled, or anything follows a final status."""
    if previous is None or mark is None:
        return False
    return previous.final or mark.position <= previous.position


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential back-off with full jitter: attempt n waits up to base * 2**(n-1), capped."""

    max_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 300.0

    def delay(self, attempts: int) -> float:
        """Seconds to wait after the `attempts`-th failure."""
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempts - 1, 0))
        return random.uniform(ceiling / 2, ceiling)


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

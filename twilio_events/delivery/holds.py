"""SID holds: one process at a time checks and runs a SID's statuses, across every process of the store."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from ..stores.base import StatusMark, Store
from .ordering import SidLocks

logger = logging.getLogger("twilio_events")

FIRST_POLL = 0.01
LAST_POLL = 0.1
"""Seconds between two attempts to take a SID another process holds: growing from the first to the last."""


class SidBusy(Exception):
    """Another process holds the SID for longer than the caller may wait: its callback must come back later
    (a 503 to Twilio inline, a retry without counting an attempt in durable mode)."""


@dataclass(slots=True)
class Hold:
    """A SID held by this process: the furthest status handled before, and the mark to record at release."""

    previous: StatusMark | None
    record: StatusMark | None = None


class SidHolds:
    """Holds a SID while its callback is checked and run: first in this process (a lock per SID), then in
    the store (`claim_sid`), where the check of the furthest status is atomic with taking the hold.

    While the block runs, the hold is extended every `lease / 3` s; a process that dies leaves its hold
    to expire after `lease` s. Released with its status mark in one store call, so that the next holder
    reads the status this one handled.
    """

    def __init__(self, store: Store, lease: float, window: float) -> None:
        self.store = store
        self.lease = lease
        self.window = window
        self._local = SidLocks()

    @contextlib.asynccontextmanager
    async def hold(self, sid: str, wait: float) -> AsyncIterator[Hold]:
        """Hold `sid` for the block, waiting up to `wait` s for another process to let go (else SidBusy)."""
        async with self._local.hold(sid):
            token = uuid.uuid4().hex
            hold = Hold(await self._claim(sid, token, wait))
            beat = asyncio.create_task(self._extend(sid, token))
            try:
                yield hold
            except BaseException:
                beat.cancel()
                with contextlib.suppress(Exception):  # else the hold expires after the lease
                    await self.store.release_sid(sid, token, None, self.window)
                raise
            beat.cancel()
            await self.store.release_sid(sid, token, hold.record, self.window)

    async def _claim(self, sid: str, token: str, wait: float) -> StatusMark | None:
        deadline = time.monotonic() + wait
        pause = FIRST_POLL
        while True:
            answer = await self.store.claim_sid(sid, token, self.lease)
            if answer.held:
                return answer.previous
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SidBusy(f"{sid} is held by another process")
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, LAST_POLL)

    async def _extend(self, sid: str, token: str) -> None:
        """The hold's heartbeat while its callback runs."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                if not await self.store.extend_sid(sid, token, self.lease):
                    logger.warning("%s: its hold ran out; another process may run its statuses now", sid)
                    return
            except Exception as exc:
                logger.error("could not extend the hold of %s: %s", sid, exc)

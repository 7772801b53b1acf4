"""Monotonic ordering: where each status stands in Twilio's lifecycles, and one event per SID at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from ..events import CallStatus, SmsStatus
from ..stores.base import StatusMark

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


class SidLocks:
    """One lock per SID in this process, dropped when nobody holds or waits for it.

    Callbacks of one SID pass the ordering check one at a time (workers, concurrent requests), or two
    could both pass it against the same previous status and run out of order.
    """

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # SID -> (lock, [users])

    @contextlib.asynccontextmanager
    async def hold(self, sid: str) -> AsyncIterator[None]:
        """Hold the lock of `sid` for the duration of the block."""
        lock, users = self._locks.setdefault(sid, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._locks[sid]

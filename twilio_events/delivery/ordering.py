"""Monotonic ordering: where each status stands in the lifecycle Twilio documents for its resource (a
call, a message, a recording, a transcription, a conference), and one event per SID at a time."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from ..events import CallStatus, ConferenceEventType, RecordingStatus, SmsStatus, TranscriptionStatus
from ..stores.base import StatusMark


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The ranks of a resource's statuses: a higher rank comes later, and nothing follows a final one."""

    ranks: Mapping[str, int]
    final: frozenset[str]
    sequenced: bool = False
    """True when Twilio numbers the callbacks (`SequenceNumber`), which then break ties within a rank."""

    def mark(self, status: str, sequence: int | None) -> StatusMark | None:
        """Where `status` stands, or None for a status Twilio does not document."""
        rank = self.ranks.get(status)
        if rank is None:
            return None
        return StatusMark(
            status, (rank, (sequence or 0) if self.sequenced else 0), final=status in self.final
        )


def _final_after(ranks: dict[str, int], finals: frozenset[str]) -> dict[str, int]:
    """`ranks`, plus every final status not ranked yet one rank after the last."""
    after = max(ranks.values()) + 1
    return {**ranks, **{status: after for status in finals if status not in ranks}}


_CALL_FINAL = frozenset(status.value for status in CallStatus if status.is_terminal)
_SMS_FINAL = frozenset(
    {SmsStatus.FAILED, SmsStatus.UNDELIVERED, SmsStatus.CANCELED, SmsStatus.RECEIVED, SmsStatus.READ}
)

LIFECYCLES: dict[str, Lifecycle] = {
    "call": Lifecycle(
        _final_after(
            {CallStatus.QUEUED: 0, CallStatus.INITIATED: 1, CallStatus.RINGING: 2, CallStatus.IN_PROGRESS: 3},
            _CALL_FINAL,
        ),
        _CALL_FINAL,
        sequenced=True,
    ),
    "sms": Lifecycle(
        {
            SmsStatus.ACCEPTED: 0,
            SmsStatus.SCHEDULED: 0,
            SmsStatus.RECEIVING: 0,
            SmsStatus.QUEUED: 1,
            SmsStatus.SENDING: 2,
            SmsStatus.SENT: 3,
            SmsStatus.PARTIALLY_DELIVERED: 4,
            SmsStatus.DELIVERED: 4,
            SmsStatus.READ: 5,
            SmsStatus.FAILED: 6,
            SmsStatus.UNDELIVERED: 6,
            SmsStatus.CANCELED: 6,
            SmsStatus.RECEIVED: 6,
        },
        _SMS_FINAL,
    ),
    "recording": Lifecycle(
        {RecordingStatus.IN_PROGRESS: 0, **{s.value: 1 for s in RecordingStatus if s.is_terminal}},
        frozenset(s.value for s in RecordingStatus if s.is_terminal),
    ),
    "transcription": Lifecycle(
        {TranscriptionStatus.IN_PROGRESS: 0, **{s.value: 1 for s in TranscriptionStatus if s.is_terminal}},
        frozenset(s.value for s in TranscriptionStatus if s.is_terminal),
    ),
    # Twilio numbers a conference's callbacks from 1 in the order it fired them, whoever they are about:
    # that order is the lifecycle (participants keep coming and going after conference-start).
    "conference": Lifecycle({event.value: 0 for event in ConferenceEventType}, frozenset(), sequenced=True),
}
"""Channel name -> its lifecycle; a channel without one (answering machine detection: one result per call)
keeps no status marks and is never ordered."""


def status_mark(channel: str, status: str, sequence: int | None) -> StatusMark | None:
    """Where `status` stands in its channel's lifecycle, or None (no lifecycle, or an undocumented status)."""
    lifecycle = LIFECYCLES.get(channel)
    return lifecycle.mark(status, sequence) if lifecycle is not None else None


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

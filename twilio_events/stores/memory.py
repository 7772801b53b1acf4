"""An in-process store: de-duplication and status marks for inline delivery in one process."""

from __future__ import annotations

import itertools
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

from .base import LeaseLost, SidHold, StatusMark, StoredEvent, StoreStats

V = TypeVar("V")


class MemoryStore:
    """Everything in dicts: fast, and gone with the process (so never used for durable delivery).

    At most `max_entries` handled keys and status marks are kept each; past that the oldest are
    forgotten first, which shortens the de-duplication window under a flood rather than grow forever.
    """

    durable = False

    def __init__(self, *, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        # key -> expiry (monotonic s), oldest first: expired or surplus entries are dropped from the front
        self._handled: OrderedDict[str, float] = OrderedDict()
        self._queued: dict[str, StoredEvent] = {}
        self._ready_at: dict[str, float] = {}
        self._running: dict[str, tuple[StoredEvent, float]] = {}  # id -> (event as claimed, lease end)
        self._dead: dict[str, StoredEvent] = {}
        self._marks: OrderedDict[str, tuple[StatusMark, float]] = OrderedDict()
        self._ids = itertools.count(1)
        self._leases = itertools.count(1)
        self._expiries: dict[str, int] = {}  # consumer -> events taken over from it
        self._sids: dict[str, tuple[str, float]] = {}  # SID -> (token, hold end)

    async def open(self, *, recover: bool = True, consumer: str | None = None) -> None:
        if recover and consumer is not None:
            await self.release(consumer)

    async def close(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def is_handled(self, key: str) -> bool:
        expiry = self._handled.get(key)
        if expiry is None:
            return False
        if expiry < time.monotonic():
            del self._handled[key]
            return False
        return True

    async def mark_handled(self, key: str, window: float) -> None:
        now = time.monotonic()
        self._handled.pop(key, None)
        self._handled[key] = now + window
        _prune(self._handled, now, self.max_entries, lambda expiry: expiry)

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        if key in self._live_keys() or await self.is_handled(key):
            return False
        event = StoredEvent(str(next(self._ids)), key, channel, params, time.time())
        self._queued[event.id] = event
        self._ready_at[event.id] = 0.0
        return True

    async def claim(self, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
        now = time.monotonic()
        for event_id, (event, lease_end) in list(self._running.items()):
            if lease_end < now:
                self._requeue(event_id, event)
                holder = event.holder or ""
                self._expiries[holder] = self._expiries.get(holder, 0) + 1
        ready = [e for e in self._queued.values() if self._ready_at[e.id] <= now][:limit]
        claimed = []
        for event in ready:
            del self._queued[event.id]
            del self._ready_at[event.id]
            held = replace(event, holder=consumer, lease=next(self._leases))
            self._running[event.id] = (held, now + lease)
            claimed.append(held)
        return claimed

    async def extend_leases(self, consumer: str, events: Sequence[StoredEvent], lease: float) -> list[str]:
        lost = []
        for event in events:
            if self._holds(event):
                self._running[event.id] = (self._running[event.id][0], time.monotonic() + lease)
            else:
                lost.append(event.id)
        return lost

    async def complete(
        self, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None = None
    ) -> None:
        self._release(event)
        await self.mark_handled(event.key, window)
        if status is not None:
            await self.advance_status(*status, window)

    async def retry_later(self, event: StoredEvent, error: str, delay: float, *, count: bool = True) -> None:
        self._release(event)
        self._queued[event.id] = _unheld(event, attempts=event.attempts + count, last_error=error)
        self._ready_at[event.id] = time.monotonic() + delay

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        self._release(event)
        self._dead[event.id] = _unheld(event, attempts=event.attempts + 1, last_error=error)

    def _holds(self, event: StoredEvent) -> bool:
        """True while `event`'s claim (its holder and lease token) still holds it."""
        held = self._running.get(event.id)
        return held is not None and (held[0].holder, held[0].lease) == (event.holder, event.lease)

    def _release(self, event: StoredEvent) -> None:
        if not self._holds(event):
            raise LeaseLost(f"event {event.id} ({event.key}) is no longer held by {event.holder}")
        del self._running[event.id]

    def _requeue(self, event_id: str, event: StoredEvent) -> None:
        del self._running[event_id]
        self._queued[event_id] = _unheld(event)
        self._ready_at[event_id] = 0.0

    async def dead_letters(self, limit: int = 100) -> list[StoredEvent]:
        return list(self._dead.values())[:limit]

    async def retry_dead(self, event_id: str | None = None) -> int:
        ids = list(self._dead) if event_id is None else [event_id] if event_id in self._dead else []
        queued = 0
        for dead_id in ids:
            if self._dead[dead_id].key in self._live_keys():
                continue  # its key was accepted again: the newer event runs instead
            event = self._dead.pop(dead_id)
            self._queued[dead_id] = _unheld(event, attempts=0)
            self._ready_at[dead_id] = 0.0
            queued += 1
        return queued

    async def purge_dead(self) -> int:
        count = len(self._dead)
        self._dead.clear()
        return count

    async def stats(self) -> StoreStats:
        consumers: dict[str, int] = {}
        for event, _ in self._running.values():
            consumers[event.holder or ""] = consumers.get(event.holder or "", 0) + 1
        now = time.monotonic()
        ready = [e.received_at for e in self._queued.values() if self._ready_at[e.id] <= now]
        return StoreStats(
            len(self._queued),
            len(self._running),
            len(self._dead),
            consumers=consumers,
            expiries=dict(self._expiries),
            oldest_waiting=min(ready, default=None),
        )

    async def held_by(self, consumer: str, limit: int = 100) -> list[StoredEvent]:
        return [event for event, _ in self._running.values() if event.holder == consumer][:limit]

    async def release(self, consumer: str) -> int:
        held = [(i, event) for i, (event, _) in self._running.items() if event.holder == consumer]
        for event_id, event in held:
            self._requeue(event_id, event)
        return len(held)

    async def claim_sid(self, sid: str, token: str, lease: float) -> SidHold:
        now = time.monotonic()
        holder, until = self._sids.get(sid, (token, now))
        if holder != token and until >= now:
            return SidHold(False, await self.last_status(sid))
        self._sids[sid] = (token, now + lease)
        return SidHold(True, await self.last_status(sid))

    async def extend_sid(self, sid: str, token: str, lease: float) -> bool:
        if self._sids.get(sid, ("", 0.0))[0] != token:
            return False
        self._sids[sid] = (token, time.monotonic() + lease)
        return True

    async def release_sid(self, sid: str, token: str, mark: StatusMark | None, window: float) -> None:
        if mark is not None:
            await self.advance_status(sid, mark, window)
        if self._sids.get(sid, ("", 0.0))[0] == token:
            del self._sids[sid]

    def _live_keys(self) -> set[str]:
        return {e.key for e in self._queued.values()} | {e.key for e, _ in self._running.values()}

    async def last_status(self, sid: str) -> StatusMark | None:
        entry = self._marks.get(sid)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        current = await self.last_status(sid)
        if current is not None and (current.final or mark.position <= current.position):
            return
        now = time.monotonic()
        self._marks.pop(sid, None)
        self._marks[sid] = (mark, now + window)
        _prune(self._marks, now, self.max_entries, lambda entry: entry[1])


def _unheld(event: StoredEvent, attempts: int | None = None, last_error: str | None = None) -> StoredEvent:
    """`event` as it waits in the queue, held by nobody; with its attempts and error changed if given."""
    attempts = event.attempts if attempts is None else attempts
    last_error = event.last_error if last_error is None else last_error
    return replace(event, holder=None, lease=0, attempts=attempts, last_error=last_error)


def _prune(entries: OrderedDict[str, V], now: float, limit: int, expiry: Callable[[V], float]) -> None:
    """Drop entries from the oldest end while they are expired or there are more than `limit`."""
    while entries:
        oldest = next(iter(entries.values()))
        if expiry(oldest) >= now and len(entries) <= limit:
            return
        entries.popitem(last=False)

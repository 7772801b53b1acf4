"""An in-process store: de-duplication and status marks for inline delivery in one process."""

from __future__ import annotations

import itertools
import struct
import time
from array import array
from collections.abc import Sequence
from dataclasses import replace
from functools import lru_cache
from hashlib import blake2b
from typing import Any

from .base import LeaseLost, SidHold, StatusMark, StoredEvent, StoreStats

DIGEST_SIZE = 16
"""Bytes of a key's BLAKE2b digest: two distinct keys share one with odds of about 2**-128 per pair."""
_EXPIRY = struct.Struct("<d")
_MARK_FIELDS = "qqI?"  # a status mark: rank, sequence, status code, final
_EMPTY = -1
_NAN = float("nan")
COMPACT_AT = 4096
"""Forgotten records past the oldest live one before the log is rewritten (when they also outnumber the
live ones): a key written again and again (a conference's SID) leaves one forgotten record per write."""


@lru_cache(maxsize=16)  # a callback's key and SID are each looked up, then written
def digest(key: str) -> bytes:
    """The fixed-size digest a key or SID is remembered by."""
    return blake2b(key.encode("utf-8", "surrogatepass"), digest_size=DIGEST_SIZE).digest()


class MemoryStore:
    """Everything in the process: fast, and gone with it (so never used for durable delivery).

    At most `max_entries` handled keys and status marks are kept each; past that the oldest are
    forgotten first, which shortens the de-duplication window under a flood rather than grow forever.
    Both are kept as digests in flat buffers (`Remembered`): about 110 bytes of RSS per callback in all,
    where strings in ordered dicts took about 650 (`python -m bench.memory`).
    """

    durable = False

    def __init__(self, *, max_entries: int = 200_000) -> None:
        self.max_entries = max_entries
        self._handled = Remembered()  # digest of a handled key -> its expiry (monotonic s)
        self._marks = Remembered(_MARK_FIELDS)  # digest of a SID -> its status mark and the mark's expiry
        self._statuses: list[str] = []  # status code -> status, for the marks
        self._status_codes: dict[str, int] = {}
        self._queued: dict[str, StoredEvent] = {}
        self._ready_at: dict[str, float] = {}
        self._running: dict[str, tuple[StoredEvent, float]] = {}  # id -> (event as claimed, lease end)
        self._dead: dict[str, StoredEvent] = {}
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
        key_digest = digest(key)
        found = self._handled.get(key_digest)
        if found is None:
            return False
        if found[1] < time.monotonic():
            self._handled.forget(key_digest)
            return False
        return True

    async def mark_handled(self, key: str, window: float) -> None:
        now = time.monotonic()
        self._handled.put(digest(key), now + window)
        self._handled.prune(now, self.max_entries)

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
        found = self._marks.get(digest(sid))
        if found is None or found[1] < time.monotonic():
            return None
        _, _, rank, sequence, code, final = found
        return StatusMark(self._statuses[code], (rank, sequence), final)

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        current = await self.last_status(sid)
        if current is not None and (current.final or mark.position <= current.position):
            return
        code = self._status_codes.get(mark.status)
        if code is None:
            code = self._status_codes[mark.status] = len(self._statuses)
            self._statuses.append(mark.status)
        now = time.monotonic()
        self._marks.put(digest(sid), now + window, *mark.position, code, mark.final)
        self._marks.prune(now, self.max_entries)


class Remembered:
    """Digests, each with an expiry and a few numbers, oldest first, in two flat buffers.

    `_log` holds one record per write in the order written (digest, expiry, then the fields `layout`
    adds); a record whose expiry is NaN was forgotten. `_slots`, an open-addressing table with linear
    probing, maps a digest to the number of its live record. No Python object is kept per entry.
    """

    def __init__(self, layout: str = "") -> None:
        self._record = struct.Struct(f"<{DIGEST_SIZE}sd{layout}")
        self._size = self._record.size
        self._log = bytearray()
        self._base = 0  # number of the record at the start of _log
        self._head = 0  # number of the oldest record that may be live
        self._next = 0  # number of the next record written
        self._slots = array("q", [_EMPTY]) * 8
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def get(self, key: bytes) -> tuple[Any, ...] | None:
        """The record remembered for `key` (digest, expiry, fields), or None."""
        number = self._slots[self._find(key)]
        if number == _EMPTY:
            return None
        return self._record.unpack_from(self._log, (number - self._base) * self._size)

    def put(self, key: bytes, expiry: float, *fields: Any) -> None:
        """Remember `key` as the newest entry, forgetting what it had before."""
        slot = self._find(key)
        if self._slots[slot] != _EMPTY:
            self._vacate(slot)
            slot = self._find(key)
        self._log += self._record.pack(key, expiry, *fields)
        self._slots[slot] = self._next
        self._next += 1
        self._count += 1
        if self._count * 2 > len(self._slots):  # at most half full: short probes, short clusters
            self._resize(len(self._slots) * 2)

    def forget(self, key: bytes) -> None:
        slot = self._find(key)
        if self._slots[slot] != _EMPTY:
            self._vacate(slot)

    def prune(self, now: float, limit: int) -> None:
        """Forget from the oldest end while the oldest entry is expired or more than `limit` are kept."""
        log, size = self._log, self._size
        while self._count:
            offset = (self._head - self._base) * size
            expiry = _EXPIRY.unpack_from(log, offset + DIGEST_SIZE)[0]
            if expiry == expiry:  # not NaN: live
                if expiry >= now and self._count <= limit:
                    break
                self._vacate(self._slot_of(self._head, offset))
            self._head += 1
        if not self._count:
            self._head = self._next
        dropped = self._head - self._base
        if dropped >= 1024 and dropped * 8 >= self._next - self._base:
            del self._log[: dropped * size]
            self._base = self._head
        forgotten = self._next - self._head - self._count
        if forgotten >= COMPACT_AT and forgotten > self._count:
            self._compact()

    def _compact(self) -> None:
        """Rewrite the log with its live records only, in the same order, and index them again."""
        log, size, base = self._log, self._size, self._base
        kept = bytearray()
        for number in range(self._head, self._next):
            offset = (number - base) * size
            expiry = _EXPIRY.unpack_from(log, offset + DIGEST_SIZE)[0]
            if expiry == expiry:  # not NaN: live
                kept += log[offset : offset + size]
        self._log, self._base, self._head, self._next = kept, 0, 0, self._count
        self._resize(len(self._slots))

    def _find(self, key: bytes) -> int:
        """The slot that holds `key`'s record number, or the empty slot where it would go."""
        slots = self._slots
        mask = len(slots) - 1
        slot = int.from_bytes(key[:8], "little") & mask
        number = slots[slot]
        if number == _EMPTY:
            return slot
        log, size, base = self._log, self._size, self._base
        while number != _EMPTY and not log.startswith(key, (number - base) * size):
            slot = (slot + 1) & mask
            number = slots[slot]
        return slot

    def _slot_of(self, number: int, offset: int) -> int:
        """The slot that holds live record `number`, found at `offset` in the log."""
        slots = self._slots
        mask = len(slots) - 1
        slot = int.from_bytes(self._log[offset : offset + 8], "little") & mask
        while slots[slot] != number:
            slot = (slot + 1) & mask
        return slot

    def _vacate(self, slot: int) -> None:
        """Forget the record in `slot`: mark it NaN and close the gap in its probe sequence."""
        slots, log, size, base = self._slots, self._log, self._size, self._base
        _EXPIRY.pack_into(log, (slots[slot] - base) * size + DIGEST_SIZE, _NAN)
        self._count -= 1
        mask = len(slots) - 1
        hole, probe = slot, slot
        while True:
            probe = (probe + 1) & mask
            number = slots[probe]
            if number == _EMPTY:
                break
            offset = (number - base) * size
            home = int.from_bytes(log[offset : offset + 8], "little") & mask
            if (probe - home) & mask >= (probe - hole) & mask:
                slots[hole] = number
                hole = probe
        slots[hole] = _EMPTY

    def _resize(self, capacity: int) -> None:
        """Rebuild the index with `capacity` slots (a power of two)."""
        slots = self._slots = array("q", [_EMPTY]) * capacity
        mask = capacity - 1
        log, size, base = self._log, self._size, self._base
        for number in range(self._head, self._next):
            offset = (number - base) * size
            expiry = _EXPIRY.unpack_from(log, offset + DIGEST_SIZE)[0]
            if expiry != expiry:  # NaN: forgotten
                continue
            slot = int.from_bytes(log[offset : offset + 8], "little") & mask
            while slots[slot] != _EMPTY:
                slot = (slot + 1) & mask
            slots[slot] = number


def _unheld(event: StoredEvent, attempts: int | None = None, last_error: str | None = None) -> StoredEvent:
    """`event` as it waits in the queue, held by nobody; with its attempts and error changed if given."""
    attempts = event.attempts if attempts is None else attempts
    last_error = event.last_error if last_error is None else last_error
    return replace(event, holder=None, lease=0, attempts=attempts, last_error=last_error)

"""What every store keeps: accepted events until handled, handled keys, and each SID's furthest status."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


class StoreUnavailable(Exception):
    """The store could not be reached or could not commit; the message says why."""


class LeaseLost(Exception):
    """The caller no longer holds the event: its lease expired and another claim took it over.

    The outcome the caller wanted to record (completion, retry, dead letter) is dropped; the event runs
    again, or is running already, under its new holder.
    """


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An accepted callback waiting in (or taken from) a store."""

    id: str
    key: str
    channel: str
    params: list[tuple[str, str]]
    received_at: float
    attempts: int = 0
    last_error: str | None = None
    holder: str | None = None
    """The consumer that claimed it (None for an event not claimed, such as a dead letter)."""
    lease: int = 0
    """The claim's token: a new one for each claim, so a holder that lost the event cannot finish it."""

    @property
    def error_line(self) -> str:
        """The last error itself: the last line of `last_error`, which may hold its traceback ("")."""
        return (self.last_error or "").rstrip("\n").rpartition("\n")[2]


@dataclass(frozen=True, slots=True)
class StatusMark:
    """The furthest status handled for one call or message SID."""

    status: str
    position: tuple[int, int]
    final: bool


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts for the health endpoint and `twilio-events inbox stats`."""

    queued: int
    running: int
    dead: int
    extra: dict[str, int] = field(default_factory=dict)
    consumers: dict[str, int] = field(default_factory=dict)
    """Events running, by the consumer that holds them."""
    expiries: dict[str, int] = field(default_factory=dict)
    """Events taken over after their lease ran out, by the consumer that had stopped extending it."""
    oldest_waiting: float | None = None
    """When (Unix time) the oldest event ready to run was received; None when none waits."""


@dataclass(frozen=True, slots=True)
class SidHold:
    """The answer to `claim_sid`: whether the caller now holds the SID, and its furthest status handled."""

    held: bool
    previous: StatusMark | None


class Store(Protocol):
    """The contract of MemoryStore, SqliteStore and RedisStore; every method may raise StoreUnavailable."""

    durable: bool
    """True when an enqueued event survives the process (SQLite, Redis)."""

    async def open(self, *, recover: bool = True, consumer: str | None = None) -> None:
        """Connect and create what is missing. With `recover` and a `consumer` (this process's identity,
        which no other live process shares), events still held under that identity were left by an
        earlier process of it, now gone, and are made ready again at once; events of other consumers
        are left to their holders until their leases expire. A tool that inspects the store while the
        service runs passes recover=False."""

    async def close(self) -> None:
        """Release connections; events still running stay in the store for the next start."""

    async def ping(self) -> None:
        """Return when the store answers; raise StoreUnavailable otherwise."""

    async def is_handled(self, key: str) -> bool:
        """True when an event with this idempotency key was handled within the window."""

    async def mark_handled(self, key: str, window: float) -> None:
        """Remember for `window` seconds that the event with this key was handled."""

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        """Commit the event durably; False (and nothing stored) when its key is queued, running or handled."""

    async def claim(self, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
        """Up to `limit` events ready to run, held for `consumer` under a lease of `lease` s; an event
        whose lease expired (its holder stopped extending it: a dead or stuck process) is ready again."""

    async def extend_leases(self, consumer: str, events: Sequence[StoredEvent], lease: float) -> list[str]:
        """Extend the leases `consumer` holds on `events` to `lease` s from now, in one call; the ids of
        the events it no longer holds (taken over after its lease expired, or finished)."""

    async def complete(
        self, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None = None
    ) -> None:
        """The event was handled: drop it from the queue, mark its key handled for `window`, and record
        `status` (sid, mark) as `advance_status` would, together. LeaseLost when the caller's claim
        no longer holds the event (nothing is recorded then)."""

    async def retry_later(self, event: StoredEvent, error: str, delay: float, *, count: bool = True) -> None:
        """A handler failed: count the attempt (unless `count` is False: the event was only put off), keep
        the error, make it ready again after `delay` s. LeaseLost when the caller's claim no longer holds
        the event."""

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        """Give up on the event: move it to the dead letters with its last error. LeaseLost when the
        caller's claim no longer holds the event."""

    async def dead_letters(self, limit: int = 100) -> list[StoredEvent]:
        """The dead letters, oldest first."""

    async def retry_dead(self, event_id: str | None = None) -> int:
        """Queue a dead letter (or all when `event_id` is None) again with its attempts reset; how many."""

    async def purge_dead(self) -> int:
        """Delete every dead letter; how many."""

    async def stats(self) -> StoreStats:
        """How many events are queued, running (by consumer) and dead, lease expiries, the oldest waiting."""

    async def held_by(self, consumer: str, limit: int = 100) -> list[StoredEvent]:
        """The events `consumer` holds (running, or left held by a dead process), oldest first."""

    async def release(self, consumer: str) -> int:
        """Make every event `consumer` holds ready again at once (a dead consumer's); how many."""

    async def last_status(self, sid: str) -> StatusMark | None:
        """The furthest status handled for `sid`, if any."""

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        """Record `mark` for `sid` unless the stored mark is final or its position is not lower (atomic)."""

    async def claim_sid(self, sid: str, token: str, lease: float) -> SidHold:
        """Hold `sid` under `token` for `lease` s unless another token holds it, and read its furthest status,
        in one atomic step: whoever holds a SID is the only one to check and run its statuses."""

    async def extend_sid(self, sid: str, token: str, lease: float) -> bool:
        """Extend the hold of `token` on `sid` to `lease` s from now; False when it no longer holds it."""

    async def release_sid(self, sid: str, token: str, mark: StatusMark | None, window: float) -> None:
        """Record `mark` (as `advance_status` would, if given) and give up the hold of `token` on `sid`,
        together; a hold `token` no longer has is left alone."""

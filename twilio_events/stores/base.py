"""What every store keeps: accepted events until handled, handled keys, and each SID's furthest status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


class StoreUnavailable(Exception):
    """The store could not be reached or could not commit; the message says why."""


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


class Store(Protocol):
    """The contract of MemoryStore, SqliteStore and RedisStore; every method may raise StoreUnavailable."""

    durable: bool
    """True when an enqueued event survives the process (SQLite, Redis)."""

    async def open(self, *, recover: bool = True) -> None:
        """Connect and create what is missing; with `recover`, make events a dead process was running
        ready again (a tool that inspects the store while the service runs passes recover=False)."""

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

    async def claim(self, consumer: str, limit: int, visibility_timeout: float) -> list[StoredEvent]:
        """Up to `limit` events ready to run, held for `consumer`; events held longer than
        `visibility_timeout` by any consumer (a dead process) are ready again."""

    async def complete(self, event: StoredEvent, window: float) -> None:
        """The event was handled: drop it from the queue and mark its key handled for `window`."""

    async def retry_later(self, event: StoredEvent, error: str, delay: float) -> None:
        """A handler failed: count the attempt, keep the error, make it ready again after `delay` s."""

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        """Give up on the event: move it to the dead letters with its last error."""

    async def dead_letters(self, limit: int = 100) -> list[StoredEvent]:
        """The dead letters, oldest first."""

    async def retry_dead(self, event_id: str | None = None) -> int:
        """Queue a dead letter (or all when `event_id` is None) again with its attempts reset; how many."""

    async def purge_dead(self) -> int:
        """Delete every dead letter; how many."""

    async def stats(self) -> StoreStats:
        """How many events are queued, running and dead."""

    async def last_status(self, sid: str) -> StatusMark | None:
        """The furthest status handled for `sid`, if any."""

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        """Record `mark` for `sid` unless the stored mark is final or its position is not lower (atomic)."""

"""What RedisStore sends and reads: events as JSON, status marks, the items of its grouped calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .base import LeaseLost, StatusMark, StoredEvent


@dataclass(frozen=True, slots=True)
class Enqueue:
    """An event to commit, under its key's marker."""

    marker: str
    event: str


@dataclass(frozen=True, slots=True)
class Complete:
    """A completion, with the status mark to record with it."""

    event: StoredEvent
    marker: str
    window_ms: int
    status: tuple[str, StatusMark] | None


@dataclass(frozen=True, slots=True)
class SidClaim:
    """A SID to hold under a token."""

    sid: str
    token: str
    lease_ms: int


@dataclass(frozen=True, slots=True)
class SidRelease:
    """A SID's hold to give up, with the status mark to record first."""

    sid: str
    token: str
    mark: StatusMark | None
    window_ms: int


def lost(event: StoredEvent) -> LeaseLost:
    return LeaseLost(f"event {event.id} ({event.key}) is no longer held by {event.holder}")


def status_mark(fields: list[str | None]) -> StatusMark | None:
    status, rank, seq, final = fields
    if status is None or rank is None or seq is None:
        return None
    return StatusMark(status, (int(rank), int(seq)), final == "1")


def encode(event: StoredEvent) -> str:
    """An event's JSON without its id, which travels beside it."""
    fields = {
        "key": event.key,
        "channel": event.channel,
        "params": event.params,
        "received_at": event.received_at,
        "attempts": event.attempts,
        "last_error": event.last_error,
    }
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def decode(event_id: str, encoded: str) -> StoredEvent:
    fields = json.loads(encoded)
    params = [(name, value) for name, value in fields["params"]]
    return StoredEvent(
        event_id,
        fields["key"],
        fields["channel"],
        params,
        fields["received_at"],
        fields["attempts"],
        fields["last_error"],
    )


def ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def expiry_ms(seconds: float) -> int:
    """Milliseconds for an expiry, at least 1 (Redis refuses an expiry of 0)."""
    return max(1, round(seconds * 1000))


def without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))

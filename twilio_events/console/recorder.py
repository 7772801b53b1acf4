"""The ring of recent callbacks kept in the process's memory, and one SID's timeline built from it."""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..delivery.ordering import is_regression, status_mark
from ..stores.base import StatusMark

RING_SIZE = 1000
"""How many callbacks the console remembers; older ones drop off."""

SID_PARAMS = (
    "CallSid",
    "MessageSid",
    "SmsSid",
    "ParentCallSid",
    "RecordingSid",
    "ConferenceSid",
    "TranscriptionSid",
)
"""The parameters whose SIDs tie a callback to a timeline (a recording's to its call, ...)."""


@dataclass(slots=True)
class Replayable:
    """What sending a callback again needs; never shown (it may hold the webhook's HTTP credentials)."""

    scope: dict[str, Any]
    body: bytes


@dataclass(slots=True)
class Entry:
    """One callback as the console shows it."""

    id: int
    at: float
    listener: str
    path: str
    channel: str
    status: str
    sid: str
    sequence: str
    verdict: str
    handler: str
    outcome: str
    duration_ms: float
    http_status: int
    response_type: str
    response_body: str
    params: list[tuple[str, str]]
    token: str
    key: str | None = None
    """The de-duplication key delivery knew it by: a worker's later outcome finds the entry with it."""
    changed: int = 0
    """When it was added or last changed, on the recorder's clock: a page asks for what changed since."""
    replay_of: int | None = None
    sids: frozenset[str] = frozenset()
    replayable: Replayable | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """The row of the live list."""
        return {
            "id": self.id,
            "at": self.at,
            "listener": self.listener,
            "channel": self.channel,
            "status": self.status,
            "sid": self.sid,
            "sequence": self.sequence,
            "verdict": self.verdict,
            "handler": self.handler,
            "outcome": self.outcome,
            "duration_ms": round(self.duration_ms, 1),
            "http_status": self.http_status,
            "replay_of": self.replay_of,
            "changed": self.changed,
        }

    def detail(self) -> dict[str, Any]:
        """The row with its parameters and the response that was sent."""
        return {
            **self.summary(),
            "path": self.path,
            "token": self.token,
            "params": [list(pair) for pair in self.params],
            "response_type": self.response_type,
            "response_body": self.response_body,
            "replayable": self.replayable is not None,
        }


class Recorder:
    """A bounded, thread-safe ring of the last RING_SIZE callbacks, newest last."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self._entries: deque[Entry] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._clock = itertools.count(1)
        self._lock = threading.Lock()

    def next_id(self) -> int:
        """A new entry's id: ids grow with arrival."""
        return next(self._ids)

    def add(self, entry: Entry) -> None:
        """Remember `entry`, dropping the oldest when the ring is full."""
        with self._lock:
            entry.changed = next(self._clock)
            self._entries.append(entry)

    def settle(self, key: str, outcome: str, handler: str) -> None:
        """A worker ran the stored event of `key`: its newest queued entry takes the outcome."""
        with self._lock:
            for entry in reversed(self._entries):
                if entry.key == key and entry.outcome in _WAITING:
                    entry.outcome = outcome or entry.outcome
                    entry.handler = handler or entry.handler
                    entry.changed = next(self._clock)
                    return

    def since(self, changed: int = 0, limit: int = RING_SIZE) -> list[Entry]:
        """Entries added or changed after `changed`, newest first, at most `limit`."""
        with self._lock:
            newer = [entry for entry in self._entries if entry.changed > changed]
        return sorted(newer, key=lambda entry: entry.id, reverse=True)[:limit]

    def get(self, entry_id: int) -> Entry | None:
        """The entry with this id, while the ring still holds it."""
        with self._lock:
            return next((entry for entry in self._entries if entry.id == entry_id), None)

    def timeline(self, sid: str) -> list[dict[str, Any]]:
        """Every callback about `sid` in the order it arrived, with late and repeated arrivals marked."""
        with self._lock:
            entries = [entry for entry in self._entries if sid in entry.sids]
        furthest: dict[str, StatusMark] = {}
        seen: set[tuple[str, str, str]] = set()
        rows = []
        for entry in entries:
            marks = []
            mark = status_mark(entry.channel, entry.status, _int(entry.sequence))
            same = (entry.channel, entry.status, entry.sequence)
            if entry.outcome in _UNDELIVERED:
                marks.append(entry.outcome)  # never delivered: it neither repeats nor orders anything
            elif entry.outcome == "duplicate":
                marks.append("duplicate")
            elif same in seen:
                marks.append("repeat")  # the same status again, run again (a new idempotency token)
            elif is_regression(furthest.get(entry.channel), mark):
                marks.append("out-of-order")
            elif mark is not None:
                furthest[entry.channel] = mark
            if entry.outcome not in _UNDELIVERED:
                seen.add(same)
            rows.append({**entry.summary(), "marks": marks})
        return rows


_UNDELIVERED = frozenset({"refused", "error", "disconnected"})
"""Outcomes of callbacks that never reached a handler."""
_WAITING = frozenset({"queued", "retrying", "dead letter"})
"""Outcomes a worker's run changes later (a dead letter runs again once retried from the inbox)."""


def _int(value: str) -> int | None:
    """A SequenceNumber, when it is one."""
    return int(value) if value.isdigit() and len(value) < 19 else None

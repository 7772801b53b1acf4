"""`twilio-events inbox list --held-by NAME` and `inbox release NAME`: a (dead) consumer's events."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TextIO

from .inbox_store import connect, run_on
from .output import CommandError, table


def list_held(url: str | None, consumer: str, limit: int, out: TextIO = sys.stdout) -> int:
    """`inbox list --held-by NAME`: the events consumer NAME holds, oldest first, up to `limit`."""
    if limit < 1:
        raise CommandError(f"--limit {limit}: give 1 or more")
    store = connect(url)
    events = run_on(store, lambda store: store.held_by(consumer, limit))
    if not events:
        print(f"{consumer} holds no events", file=out)
        return 0
    rows = [
        [event.id, event.key, event.channel, str(event.attempts), _time(event.received_at)]
        for event in events
    ]
    print(table(["ID", "KEY", "CHANNEL", "ATTEMPTS", "RECEIVED (UTC)"], rows, indent=""), file=out)
    return 0


def release(url: str | None, consumer: str, out: TextIO = sys.stdout) -> int:
    """`inbox release NAME`: every event consumer NAME holds, ready to run again at once."""
    store = connect(url)
    released = run_on(store, lambda store: store.release(consumer))
    if not released:
        print(f"{consumer} holds no events", file=out)
        return 0
    events = f"{released} event{'' if released == 1 else 's'}"
    print(f"released {events} held by {consumer}: ready to run again", file=out)
    return 0


def _time(timestamp: float) -> str:
    """A Unix time as UTC date and time to the second."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")

"""The SQLite store's schema, and one function per store operation, run inside the writer's transaction."""

from __future__ import annotations

import json
import sqlite3
import time
from typing import Any

from .base import LeaseLost, SidHold, StatusMark, StoredEvent, StoreStats

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        channel TEXT NOT NULL,
        params TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'dead')),
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        ready_at REAL NOT NULL,
        held_by TEXT,
        held_until REAL,
        dead_at REAL,
        received_at REAL NOT NULL,
        lease INTEGER NOT NULL DEFAULT 0
    )""",
    # One live event per key; a dead letter does not hold its key, so the callback may be accepted again.
    "CREATE UNIQUE INDEX IF NOT EXISTS events_live_key ON events (key) WHERE state != 'dead'",
    "CREATE INDEX IF NOT EXISTS events_state ON events (state, id)",
    "CREATE TABLE IF NOT EXISTS handled_keys (key TEXT PRIMARY KEY, expires_at REAL NOT NULL) WITHOUT ROWID",
    """CREATE TABLE IF NOT EXISTS status_marks (
        sid TEXT PRIMARY KEY,
        status TEXT NOT NULL,
        rank INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        final INTEGER NOT NULL,
        expires_at REAL NOT NULL
    ) WITHOUT ROWID""",
    # The SIDs whose statuses a process is checking and running now (ordering="monotonic"), until when.
    "CREATE TABLE IF NOT EXISTS sid_holds (sid TEXT PRIMARY KEY, token TEXT NOT NULL, until REAL NOT NULL)"
    " WITHOUT ROWID",
    # Per consumer, how many of its events were taken over after their lease ran out.
    "CREATE TABLE IF NOT EXISTS lease_expiries (consumer TEXT PRIMARY KEY, count INTEGER NOT NULL)"
    " WITHOUT ROWID",
)

COLUMNS = "id, key, channel, params, received_at, attempts, last_error, held_by, lease"
NOT_HELD = "held_by = NULL, held_until = NULL"
HELD = "id = ? AND state = 'running' AND held_by = ? AND lease = ?"
"""The condition of an update by the event's holder: the claim it got the event by still holds it."""


def prepare(conn: sqlite3.Connection, consumer: str | None) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "lease" not in columns:  # a file made before leases had their number
        conn.execute("ALTER TABLE events ADD COLUMN lease INTEGER NOT NULL DEFAULT 0")
    if consumer is not None:  # no live process shares our identity: what it holds, a dead one left
        release(conn, consumer)


def release(conn: sqlite3.Connection, consumer: str) -> int:
    changed = conn.execute(
        f"UPDATE events SET state = 'pending', ready_at = 0, {NOT_HELD}"
        " WHERE state = 'running' AND held_by = ?",
        (consumer,),
    )
    return changed.rowcount


def held_by(conn: sqlite3.Connection, consumer: str, limit: int) -> list[StoredEvent]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM events WHERE state = 'running' AND held_by = ? ORDER BY id LIMIT ?",
        (consumer, max(limit, 0)),
    )
    return [_event(row) for row in rows]


def purge_expired(conn: sqlite3.Connection) -> None:
    now = time.time()
    conn.execute("DELETE FROM handled_keys WHERE expires_at < ?", (now,))
    conn.execute("DELETE FROM status_marks WHERE expires_at < ?", (now,))
    conn.execute("DELETE FROM sid_holds WHERE until < ?", (now,))


def is_handled(conn: sqlite3.Connection, key: str) -> bool:
    found = conn.execute("SELECT 1 FROM handled_keys WHERE key = ? AND expires_at >= ?", (key, time.time()))
    return found.fetchone() is not None


def mark_handled(conn: sqlite3.Connection, key: str, window: float) -> None:
    conn.execute("INSERT OR REPLACE INTO handled_keys VALUES (?, ?)", (key, time.time() + window))


def enqueue(conn: sqlite3.Connection, key: str, channel: str, params: str) -> bool:
    if is_handled(conn, key):
        return False
    now = time.time()
    inserted = conn.execute(
        "INSERT OR IGNORE INTO events (key, channel, params, state, ready_at, received_at)"
        " VALUES (?, ?, ?, 'pending', ?, ?)",
        (key, channel, params, now, now),
    )
    return inserted.rowcount == 1


def claim(conn: sqlite3.Connection, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
    now = time.time()
    # leases that ran out: their holders stopped extending them (dead or stuck), counted per holder
    expired = "state = 'running' AND held_until < ?"
    conn.execute(
        "INSERT INTO lease_expiries SELECT coalesce(held_by, ''), count(*) FROM events"
        f" WHERE {expired} GROUP BY 1 ON CONFLICT (consumer) DO UPDATE SET count = count + excluded.count",
        (now,),
    )
    conn.execute(f"UPDATE events SET state = 'pending', {NOT_HELD} WHERE {expired}", (now,))
    rows = conn.execute(
        "UPDATE events SET state = 'running', held_by = ?, held_until = ?, lease = lease + 1 WHERE id IN"
        " (SELECT id FROM events WHERE state = 'pending' AND ready_at <= ? ORDER BY id LIMIT ?)"
        f" RETURNING {COLUMNS}",
        (consumer, now + lease, now, max(limit, 0)),
    ).fetchall()
    return [_event(row) for row in sorted(rows)]


def extend_leases(
    conn: sqlite3.Connection, consumer: str, held: list[tuple[str, int]], lease: float
) -> list[str]:
    until = time.time() + lease
    lost = []
    for event_id, number in held:
        extended = conn.execute(
            f"UPDATE events SET held_until = ? WHERE {HELD}", (until, event_id, consumer, number)
        )
        if extended.rowcount == 0:
            lost.append(event_id)
    return lost


def complete(
    conn: sqlite3.Connection, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None
) -> None:
    _check_held(conn.execute(f"DELETE FROM events WHERE {HELD}", _holding(event)), event)
    mark_handled(conn, event.key, window)
    if status is not None:
        advance_status(conn, *status, window)


def retry_later(conn: sqlite3.Connection, event: StoredEvent, error: str, delay: float, count: bool) -> None:
    changed = conn.execute(
        "UPDATE events SET state = 'pending', attempts = attempts + ?, last_error = ?, ready_at = ?,"
        f" {NOT_HELD} WHERE {HELD}",
        (int(count), error, time.time() + delay, *_holding(event)),
    )
    _check_held(changed, event)


def dead_letter(conn: sqlite3.Connection, event: StoredEvent, error: str) -> None:
    changed = conn.execute(
        f"UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = ?, dead_at = ?, {NOT_HELD}"
        f" WHERE {HELD}",
        (error, time.time(), *_holding(event)),
    )
    _check_held(changed, event)


def _holding(event: StoredEvent) -> tuple[str, str | None, int]:
    """The parameters of HELD for `event` as its claim returned it."""
    return event.id, event.holder, event.lease


def _check_held(changed: sqlite3.Cursor, event: StoredEvent) -> None:
    if changed.rowcount == 0:  # raised inside the job: its savepoint is rolled back, nothing recorded
        raise LeaseLost(f"event {event.id} ({event.key}) is no longer held by {event.holder}")


def dead_letters(conn: sqlite3.Connection, limit: int) -> list[StoredEvent]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM events WHERE state = 'dead' ORDER BY dead_at, id LIMIT ?", (max(limit, 0),)
    )
    return [_event(row) for row in rows]


def retry_dead(conn: sqlite3.Connection, event_id: str | None) -> int:
    if event_id is None:
        dead = conn.execute("SELECT id, key FROM events WHERE state = 'dead' ORDER BY dead_at, id").fetchall()
    else:
        dead = conn.execute(
            "SELECT id, key FROM events WHERE state = 'dead' AND id = ?", (event_id,)
        ).fetchall()
    queued = 0
    for dead_id, key in dead:
        # A dead letter whose key was accepted again stays dead: the newer event runs instead.
        live = conn.execute("SELECT 1 FROM events WHERE key = ? AND state != 'dead'", (key,)).fetchone()
        if live is None:
            conn.execute(
                "UPDATE events SET state = 'pending', attempts = 0, ready_at = ?, dead_at = NULL"
                " WHERE id = ?",
                (time.time(), dead_id),
            )
            queued += 1
    return queued


def stats(conn: sqlite3.Connection) -> StoreStats:
    counts = dict.fromkeys(("pending", "running", "dead"), 0)
    delayed = 0
    query = "SELECT state, count(*), total(ready_at > ?) FROM events GROUP BY state"
    for state, count, later in conn.execute(query, (time.time(),)):
        counts[state] = count
        delayed += int(later) if state == "pending" else 0
    consumers = dict(
        conn.execute("SELECT held_by, count(*) FROM events WHERE state = 'running' GROUP BY held_by")
    )
    expiries = dict(conn.execute("SELECT consumer, count FROM lease_expiries"))
    now = time.time()
    (pending_since,) = conn.execute("SELECT min(received_at) FROM events WHERE state = 'pending'").fetchone()
    (oldest,) = conn.execute(
        "SELECT min(received_at) FROM events WHERE state = 'pending' AND ready_at <= ?", (now,)
    ).fetchone()
    extra = {"delayed": delayed, "oldest_waiting_age": int(now - pending_since) if pending_since else 0}
    pending, running, dead = counts["pending"], counts["running"], counts["dead"]
    return StoreStats(pending, running, dead, extra, consumers, expiries, oldest)


def last_status(conn: sqlite3.Connection, sid: str) -> StatusMark | None:
    row = conn.execute(
        "SELECT status, rank, seq, final FROM status_marks WHERE sid = ? AND expires_at >= ?",
        (sid, time.time()),
    ).fetchone()
    return None if row is None else StatusMark(row[0], (row[1], row[2]), bool(row[3]))


def advance_status(conn: sqlite3.Connection, sid: str, mark: StatusMark, window: float) -> None:
    now = time.time()
    conn.execute(
        "INSERT INTO status_marks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO UPDATE SET"
        " status = excluded.status, rank = excluded.rank, seq = excluded.seq, final = excluded.final,"
        " expires_at = excluded.expires_at"
        " WHERE status_marks.expires_at < ? OR (NOT status_marks.final AND"
        " (status_marks.rank, status_marks.seq) < (excluded.rank, excluded.seq))",
        (sid, mark.status, *mark.position, int(mark.final), now + window, now),
    )


def claim_sid(conn: sqlite3.Connection, sid: str, token: str, lease: float) -> SidHold:
    now = time.time()
    taken = conn.execute(
        "INSERT INTO sid_holds VALUES (?, ?, ?) ON CONFLICT (sid) DO UPDATE SET token = excluded.token,"
        " until = excluded.until WHERE sid_holds.until < ? OR sid_holds.token = excluded.token",
        (sid, token, now + lease, now),
    )
    return SidHold(taken.rowcount == 1, last_status(conn, sid))


def extend_sid(conn: sqlite3.Connection, sid: str, token: str, lease: float) -> bool:
    extended = conn.execute(
        "UPDATE sid_holds SET until = ? WHERE sid = ? AND token = ?", (time.time() + lease, sid, token)
    )
    return extended.rowcount == 1


def release_sid(
    conn: sqlite3.Connection, sid: str, token: str, mark: StatusMark | None, window: float
) -> None:
    if mark is not None:
        advance_status(conn, sid, mark, window)
    conn.execute("DELETE FROM sid_holds WHERE sid = ? AND token = ?", (sid, token))


def _event(row: tuple[Any, ...]) -> StoredEvent:
    event_id, key, channel, params, received_at, attempts, last_error, holder, lease = row
    pairs = [(name, value) for name, value in json.loads(params)]
    return StoredEvent(str(event_id), key, channel, pairs, received_at, attempts, last_error, holder, lease)

"""A durable store in one SQLite file: one writer thread, WAL with full fsync, and group commit."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from .base import LeaseLost, StatusMark, StoredEvent, StoreStats, StoreUnavailable

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

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
)

COLUMNS = "id, key, channel, params, received_at, attempts, last_error, held_by, lease"
NOT_HELD = "held_by = NULL, held_until = NULL"
HELD = "id = ? AND state = 'running' AND held_by = ? AND lease = ?"
"""The condition of an update by the event's holder: the claim it got the event by still holds it."""

PURGE_EVERY = 60.0
"""Seconds between purges of expired handled keys and status marks."""


class SqliteStore:
    """Events, handled keys and status marks in one SQLite file, committed with fsync before returning.

    A claim holds an event under a lease (`held_by`, `held_until`, and `lease`, a number that each claim
    increases); its holder extends the lease while the handler runs, and only a claim that still holds
    the event can finish it. Several processes on one machine may share the file: an event whose lease
    ran out is taken over by any claim, and `open()` takes back at once only what is held under the
    opening process's own consumer identity (left there by a process of that identity that died).
    """

    durable = True

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 5.0) -> None:
        """`path`: the database file (created when missing); `timeout`: seconds to wait for a lock."""
        self.path = os.fspath(path)
        self.timeout = timeout
        self.commits = 0
        """Transactions committed so far; concurrent calls share one (group commit)."""
        self._jobs: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._purged_at = 0.0

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    async def open(self, *, recover: bool = True, consumer: str | None = None) -> None:
        if self._writer is not None:
            return
        self._jobs = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, args=(self._jobs,), name=repr(self), daemon=True)
        self._writer.start()
        try:
            await self._run(functools.partial(_prepare, consumer=consumer if recover else None))
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._jobs.put(None)
            await asyncio.to_thread(writer.join)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def is_handled(self, key: str) -> bool:
        return await self._run(partial(_is_handled, key=key))

    async def mark_handled(self, key: str, window: float) -> None:
        await self._run(partial(_mark_handled, key=key, window=window))

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        encoded = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
        return await self._run(partial(_enqueue, key=key, channel=channel, params=encoded))

    async def claim(self, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
        return await self._run(partial(_claim, consumer=consumer, limit=limit, lease=lease))

    async def extend_leases(self, consumer: str, events: Sequence[StoredEvent], lease: float) -> list[str]:
        held = [(event.id, event.lease) for event in events if event.holder == consumer]
        lost = [event.id for event in events if event.holder != consumer]
        return lost + await self._run(partial(_extend_leases, consumer=consumer, held=held, lease=lease))

    async def complete(
        self, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None = None
    ) -> None:
        await self._run(partial(_complete, event=event, window=window, status=status))

    async def retry_later(self, event: StoredEvent, error: str, delay: float) -> None:
        await self._run(partial(_retry_later, event=event, error=error, delay=delay))

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        await self._run(partial(_dead_letter, event=event, error=error))

    async def dead_letters(self, limit: int = 100) -> list[StoredEvent]:
        return await self._run(partial(_dead_letters, limit=limit))

    async def retry_dead(self, event_id: str | None = None) -> int:
        return await self._run(partial(_retry_dead, event_id=event_id))

    async def purge_dead(self) -> int:
        return await self._run(lambda conn: conn.execute("DELETE FROM events WHERE state = 'dead'").rowcount)

    async def stats(self) -> StoreStats:
        return await self._run(_stats)

    async def last_status(self, sid: str) -> StatusMark | None:
        return await self._run(partial(_last_status, sid=sid))

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        await self._run(partial(_advance_status, sid=sid, mark=mark, window=window))

    async def _run(self, work: Work[T]) -> T:
        """Hand `work` to the writer thread and wait until the transaction holding it has committed."""
        if self._writer is None:
            raise StoreUnavailable(f"{self!r} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put(_Job(work, loop, future))
        return await future

    def _write(self, jobs: queue.SimpleQueue[_Job[Any] | None]) -> None:
        """The writer thread: everything waiting when a transaction starts goes into that transaction."""
        try:
            conn: sqlite3.Connection | None = self._connect()
            failure = None
        except sqlite3.Error as exc:
            conn, failure = None, self._unavailable(exc)
        stopping = False
        while not stopping:
            batch: list[_Job[Any]] = []
            job = jobs.get()
            while job is not None:
                batch.append(job)
                try:
                    job = jobs.get_nowait()
                except queue.Empty:
                    break
            stopping = job is None
            if conn is None:
                for waiting in batch:
                    waiting.settle(None, failure)
            elif batch:
                self._commit(conn, batch)
        if conn is not None:
            conn.close()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
        except sqlite3.Error:
            conn.close()
            raise
        return conn

    def _commit(self, conn: sqlite3.Connection, batch: list[_Job[Any]]) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = [_isolated(conn, job) for job in batch]
            if time.monotonic() - self._purged_at > PURGE_EVERY:
                _purge_expired(conn)
                self._purged_at = time.monotonic()
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            failure = self._unavailable(exc) if isinstance(exc, sqlite3.Error) else exc
            for job in batch:
                job.settle(None, failure)
            return
        self.commits += 1
        for job, (result, error) in zip(batch, results, strict=True):
            job.settle(result, error)

    def _unavailable(self, exc: sqlite3.Error) -> StoreUnavailable:
        return StoreUnavailable(f"SQLite store {self.path!r}: {exc}")


def _isolated(conn: sqlite3.Connection, job: _Job[T]) -> tuple[T | None, Exception | None]:
    """Run one job inside the shared transaction; a job that fails for its own reasons (not SQLite's)
    is rolled back alone and fails alone, instead of failing every job committed with it."""
    conn.execute("SAVEPOINT job")
    try:
        result = job.work(conn)
    except sqlite3.Error:
        raise  # the database itself failed: the whole transaction goes
    except Exception as exc:
        conn.execute("ROLLBACK TO job")
        conn.execute("RELEASE job")
        return None, exc
    conn.execute("RELEASE job")
    return result, None


@dataclass(slots=True)
class _Job(Generic[T]):
    """Work for the writer thread and the future its caller awaits."""

    work: Work[T]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[T]

    def settle(self, result: T | None, error: BaseException | None) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(_settle, self.future, result, error)


def _settle(future: asyncio.Future[Any], result: object, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _prepare(conn: sqlite3.Connection, consumer: str | None) -> None:
    for statement in SCHEMA:
        conn.execute(statement)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
    if "lease" not in columns:  # a file made before leases had their number
        conn.execute("ALTER TABLE events ADD COLUMN lease INTEGER NOT NULL DEFAULT 0")
    if consumer is not None:  # no live process shares our identity: what it holds, a dead one left
        conn.execute(
            f"UPDATE events SET state = 'pending', {NOT_HELD} WHERE state = 'running' AND held_by = ?",
            (consumer,),
        )


def _purge_expired(conn: sqlite3.Connection) -> None:
    now = time.time()
    conn.execute("DELETE FROM handled_keys WHERE expires_at < ?", (now,))
    conn.execute("DELETE FROM status_marks WHERE expires_at < ?", (now,))


def _is_handled(conn: sqlite3.Connection, key: str) -> bool:
    found = conn.execute("SELECT 1 FROM handled_keys WHERE key = ? AND expires_at >= ?", (key, time.time()))
    return found.fetchone() is not None


def _mark_handled(conn: sqlite3.Connection, key: str, window: float) -> None:
    conn.execute("INSERT OR REPLACE INTO handled_keys VALUES (?, ?)", (key, time.time() + window))


def _enqueue(conn: sqlite3.Connection, key: str, channel: str, params: str) -> bool:
    if _is_handled(conn, key):
        return False
    now = time.time()
    inserted = conn.execute(
        "INSERT OR IGNORE INTO events (key, channel, params, state, ready_at, received_at)"
        " VALUES (?, ?, ?, 'pending', ?, ?)",
        (key, channel, params, now, now),
    )
    return inserted.rowcount == 1


def _claim(conn: sqlite3.Connection, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
    now = time.time()
    conn.execute(  # leases that ran out: their holders stopped extending them (dead or stuck)
        f"UPDATE events SET state = 'pending', {NOT_HELD} WHERE state = 'running' AND held_until < ?",
        (now,),
    )
    rows = conn.execute(
        "UPDATE events SET state = 'running', held_by = ?, held_until = ?, lease = lease + 1 WHERE id IN"
        " (SELECT id FROM events WHERE state = 'pending' AND ready_at <= ? ORDER BY id LIMIT ?)"
        f" RETURNING {COLUMNS}",
        (consumer, now + lease, now, max(limit, 0)),
    ).fetchall()
    return [_event(row) for row in sorted(rows)]


def _extend_leases(
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


def _complete(
    conn: sqlite3.Connection, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None
) -> None:
    _check_held(conn.execute(f"DELETE FROM events WHERE {HELD}", _holding(event)), event)
    _mark_handled(conn, event.key, window)
    if status is not None:
        _advance_status(conn, *status, window)


def _retry_later(conn: sqlite3.Connection, event: StoredEvent, error: str, delay: float) -> None:
    changed = conn.execute(
        "UPDATE events SET state = 'pending', attempts = attempts + 1, last_error = ?, ready_at = ?,"
        f" {NOT_HELD} WHERE {HELD}",
        (error, time.time() + delay, *_holding(event)),
    )
    _check_held(changed, event)


def _dead_letter(conn: sqlite3.Connection, event: StoredEvent, error: str) -> None:
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


def _dead_letters(conn: sqlite3.Connection, limit: int) -> list[StoredEvent]:
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM events WHERE state = 'dead' ORDER BY dead_at, id LIMIT ?", (max(limit, 0),)
    )
    return [_event(row) for row in rows]


def _retry_dead(conn: sqlite3.Connection, event_id: str | None) -> int:
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


def _stats(conn: sqlite3.Connection) -> StoreStats:
    counts = dict.fromkeys(("pending", "running", "dead"), 0)
    delayed = 0
    query = "SELECT state, count(*), total(ready_at > ?) FROM events GROUP BY state"
    for state, count, later in conn.execute(query, (time.time(),)):
        counts[state] = count
        delayed += int(later) if state == "pending" else 0
    return StoreStats(counts["pending"], counts["running"], counts["dead"], {"delayed": delayed})


def _last_status(conn: sqlite3.Connection, sid: str) -> StatusMark | None:
    row = conn.execute(
        "SELECT status, rank, seq, final FROM status_marks WHERE sid = ? AND expires_at >= ?",
        (sid, time.time()),
    ).fetchone()
    return None if row is None else StatusMark(row[0], (row[1], row[2]), bool(row[3]))


def _advance_status(conn: sqlite3.Connection, sid: str, mark: StatusMark, window: float) -> None:
    now = time.time()
    conn.execute(
        "INSERT INTO status_marks VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO UPDATE SET"
        " status = excluded.status, rank = excluded.rank, seq = excluded.seq, final = excluded.final,"
        " expires_at = excluded.expires_at"
        " WHERE status_marks.expires_at < ? OR (NOT status_marks.final AND"
        " (status_marks.rank, status_marks.seq) < (excluded.rank, excluded.seq))",
        (sid, mark.status, *mark.position, int(mark.final), now + window, now),
    )


def _event(row: tuple[Any, ...]) -> StoredEvent:
    event_id, key, channel, params, received_at, attempts, last_error, holder, lease = row
    pairs = [(name, value) for name, value in json.loads(params)]
    return StoredEvent(str(event_id), key, channel, pairs, received_at, attempts, last_error, holder, lease)

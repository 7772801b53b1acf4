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

import twilio_events.stores.sqlite_sql as sql

from .base import SidHold, StatusMark, StoredEvent, StoreStats, StoreUnavailable

T = TypeVar("T")
Work = Callable[[sqlite3.Connection], T]

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
            await self._run(functools.partial(sql.prepare, consumer=consumer if recover else None))
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
        return await self._run(partial(sql.is_handled, key=key))

    async def mark_handled(self, key: str, window: float) -> None:
        await self._run(partial(sql.mark_handled, key=key, window=window))

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        encoded = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
        return await self._run(partial(sql.enqueue, key=key, channel=channel, params=encoded))

    async def claim(self, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
        return await self._run(partial(sql.claim, consumer=consumer, limit=limit, lease=lease))

    async def extend_leases(self, consumer: str, events: Sequence[StoredEvent], lease: float) -> list[str]:
        held = [(event.id, event.lease) for event in events if event.holder == consumer]
        lost = [event.id for event in events if event.holder != consumer]
        return lost + await self._run(partial(sql.extend_leases, consumer=consumer, held=held, lease=lease))

    async def complete(
        self, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None = None
    ) -> None:
        await self._run(partial(sql.complete, event=event, window=window, status=status))

    async def retry_later(self, event: StoredEvent, error: str, delay: float, *, count: bool = True) -> None:
        await self._run(partial(sql.retry_later, event=event, error=error, delay=delay, count=count))

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        await self._run(partial(sql.dead_letter, event=event, error=error))

    async def dead_letters(self, limit: int = 100) -> list[StoredEvent]:
        return await self._run(partial(sql.dead_letters, limit=limit))

    async def retry_dead(self, event_id: str | None = None) -> int:
        return await self._run(partial(sql.retry_dead, event_id=event_id))

    async def purge_dead(self) -> int:
        return await self._run(lambda conn: conn.execute("DELETE FROM events WHERE state = 'dead'").rowcount)

    async def stats(self) -> StoreStats:
        return await self._run(sql.stats)

    async def held_by(self, consumer: str, limit: int = 100) -> list[StoredEvent]:
        return await self._run(partial(sql.held_by, consumer=consumer, limit=limit))

    async def release(self, consumer: str) -> int:
        return await self._run(partial(sql.release, consumer=consumer))

    async def claim_sid(self, sid: str, token: str, lease: float) -> SidHold:
        return await self._run(partial(sql.claim_sid, sid=sid, token=token, lease=lease))

    async def extend_sid(self, sid: str, token: str, lease: float) -> bool:
        return await self._run(partial(sql.extend_sid, sid=sid, token=token, lease=lease))

    async def release_sid(self, sid: str, token: str, mark: StatusMark | None, window: float) -> None:
        await self._run(partial(sql.release_sid, sid=sid, token=token, mark=mark, window=window))

    async def last_status(self, sid: str) -> StatusMark | None:
        return await self._run(partial(sql.last_status, sid=sid))

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        await self._run(partial(sql.advance_status, sid=sid, mark=mark, window=window))

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
                sql.purge_expired(conn)
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

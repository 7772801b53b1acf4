"""The calls and messages waiting for a final status, kept beside the app's store (memory, SQLite, Redis).

Each SID is watched from its first non-final status until a final one is handled. A reconciliation pass
claims the SIDs last seen before a cut-off under a short lease, so that instances sharing the store never
ask Twilio about the same SID at once, and a pass that dies leaves them to the next one.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ..stores import Store


@dataclass(frozen=True, slots=True)
class Watched:
    """A call or message whose last handled status is not final."""

    channel: str
    sid: str
    account: str
    status: str
    seen_at: float
    """When its last status was handled (or when it was last checked), in seconds since the epoch."""


class Watchlist(Protocol):
    """What MemoryWatchlist, SqliteWatchlist and RedisWatchlist keep."""

    async def touch(self, channel: str, sid: str, account: str, status: str) -> None:
        """Watch `sid` (or refresh it): its last handled status is `status`, now."""

    async def forget(self, sid: str) -> None:
        """Stop watching `sid`: its final status was handled."""

    async def claim(self, seen_before: float, seen_after: float, limit: int, lease: float) -> list[Watched]:
        """Up to `limit` SIDs last seen between `seen_after` and `seen_before`, held for `lease` seconds."""

    async def release(self, sid: str, *, checked: bool) -> None:
        """Hand a claimed SID back; with `checked` its clock restarts (Twilio says it is not finished)."""

    async def count(self) -> int:
        """How many SIDs are waiting for a final status."""

    async def close(self) -> None:
        """Release connections."""


def watchlist_for(store: Store) -> Watchlist:
    """The watchlist that lives where `store` does: same SQLite file, same Redis, or memory."""
    from ..stores.redis import RedisStore
    from ..stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        return SqliteWatchlist(store.path)
    if isinstance(store, RedisStore):
        return RedisWatchlist(store.url, prefix=store.prefix)
    return MemoryWatchlist()


class MemoryWatchlist:
    """One process's watchlist (the inline default): lost with the process."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Watched, float]] = {}  # sid -> (entry, claimed until)

    async def touch(self, channel: str, sid: str, account: str, status: str) -> None:
        self._entries[sid] = (Watched(channel, sid, account, status, time.time()), 0.0)

    async def forget(self, sid: str) -> None:
        self._entries.pop(sid, None)

    async def claim(self, seen_before: float, seen_after: float, limit: int, lease: float) -> list[Watched]:
        now = time.time()
        claimed: list[Watched] = []
        for sid, (entry, until) in list(self._entries.items()):
            if len(claimed) >= limit:
                break
            if seen_after <= entry.seen_at < seen_before and until <= now:
                self._entries[sid] = (entry, now + lease)
                claimed.append(entry)
        return claimed

    async def release(self, sid: str, *, checked: bool) -> None:
        found = self._entries.get(sid)
        if found is not None:
            entry = found[0]
            if checked:
                entry = Watched(entry.channel, entry.sid, entry.account, entry.status, time.time())
            self._entries[sid] = (entry, 0.0)

    async def count(self) -> int:
        return len(self._entries)

    async def close(self) -> None:
        pass


_SCHEMA = """CREATE TABLE IF NOT EXISTS reconcile_watch (
    sid TEXT PRIMARY KEY, channel TEXT NOT NULL, account TEXT NOT NULL, status TEXT NOT NULL,
    seen_at REAL NOT NULL, claimed_until REAL NOT NULL DEFAULT 0)"""


class SqliteWatchlist:
    """A table of the store's SQLite file, written through a connection of its own in a thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._connection: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()

    async def touch(self, channel: str, sid: str, account: str, status: str) -> None:
        await self._run(
            "INSERT INTO reconcile_watch VALUES (?, ?, ?, ?, ?, 0) ON CONFLICT (sid) DO UPDATE SET "
            "status = excluded.status, seen_at = excluded.seen_at",
            (sid, channel, account, status, time.time()),
        )

    async def forget(self, sid: str) -> None:
        await self._run("DELETE FROM reconcile_watch WHERE sid = ?", (sid,))

    async def claim(self, seen_before: float, seen_after: float, limit: int, lease: float) -> list[Watched]:
        now = time.time()
        rows = await self._run(
            "UPDATE reconcile_watch SET claimed_until = ? WHERE sid IN (SELECT sid FROM reconcile_watch "
            "WHERE seen_at < ? AND seen_at >= ? AND claimed_until <= ? ORDER BY seen_at LIMIT ?) "
            "RETURNING channel, sid, account, status, seen_at",
            (now + lease, seen_before, seen_after, now, limit),
        )
        return [Watched(*row) for row in rows]

    async def release(self, sid: str, *, checked: bool) -> None:
        if checked:
            await self._run(
                "UPDATE reconcile_watch SET claimed_until = 0, seen_at = ? WHERE sid = ?", (time.time(), sid)
            )
        else:
            await self._run("UPDATE reconcile_watch SET claimed_until = 0 WHERE sid = ?", (sid,))

    async def count(self) -> int:
        rows = await self._run("SELECT count(*) FROM reconcile_watch", ())
        return int(rows[0][0])

    async def close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await asyncio.to_thread(connection.close)

    async def _run(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self._lock:  # one statement at a time on the one connection
            return await asyncio.to_thread(self._execute, sql, args)

    def _execute(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if self._connection is None:
            connection = sqlite3.connect(
                self.path, timeout=5.0, isolation_level=None, check_same_thread=False
            )
            connection.execute("PRAGMA busy_timeout = 5000")
            connection.execute(_SCHEMA)
            self._connection = connection
        rows = self._connection.execute(sql, args).fetchall()
        return [tuple(row) for row in rows]


# KEYS: due (sorted set sid -> seen_at), info (hash sid -> entry). ARGV: before, after, limit, lease ms,
# lock prefix, token. Claims each due SID whose lock it can take; returns their entries.
_CLAIM = """
local claimed = {}
local limit = tonumber(ARGV[3])
for _, sid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '(' .. ARGV[1])) do
    if #claimed >= limit then break end
    if redis.call('SET', ARGV[5] .. sid, ARGV[6], 'NX', 'PX', ARGV[4]) then
        local entry = redis.call('HGET', KEYS[2], sid)
        if entry then table.insert(claimed, entry) end
    end
end
return claimed
"""


class RedisWatchlist:
    """A sorted set by last-seen time, an entry per SID, and a lock per claimed SID, in the store's Redis."""

    def __init__(self, url: str, *, prefix: str = "twilio_events") -> None:
        self.url = url
        self._due = f"{prefix}:reconcile:due"
        self._info = f"{prefix}:reconcile:info"
        self._lock_prefix = f"{prefix}:reconcile:lock:"
        self._token = uuid.uuid4().hex
        self._redis: Redis | None = None

    async def touch(self, channel: str, sid: str, account: str, status: str) -> None:
        now = time.time()
        entry = json.dumps([channel, sid, account, status, now])
        redis = self._client()
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self._due, {sid: now})
            pipe.hset(self._info, sid, entry)
            await pipe.execute()

    async def forget(self, sid: str) -> None:
        redis = self._client()
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zrem(self._due, sid)
            pipe.hdel(self._info, sid)
            pipe.delete(self._lock_prefix + sid)
            await pipe.execute()

    async def claim(self, seen_before: float, seen_after: float, limit: int, lease: float) -> list[Watched]:
        entries = await self._client().eval(
            _CLAIM,
            2,
            self._due,
            self._info,
            repr(seen_before),
            repr(seen_after),
            str(limit),
            str(int(lease * 1000)),
            self._lock_prefix,
            self._token,
        )
        return [Watched(*json.loads(entry)) for entry in entries]

    async def release(self, sid: str, *, checked: bool) -> None:
        redis = self._client()
        async with redis.pipeline(transaction=True) as pipe:
            if checked:
                pipe.zadd(self._due, {sid: time.time()}, xx=True)
            pipe.delete(self._lock_prefix + sid)
            await pipe.execute()

    async def count(self) -> int:
        return int(await self._client().zcard(self._due))

    async def close(self) -> None:
        if self._redis is not None:
            client, self._redis = self._redis, None
            await client.aclose()

    def _client(self) -> Redis:
        if self._redis is None:
            import redis.asyncio

            self._redis = redis.asyncio.Redis.from_url(self.url, decode_responses=True)
        return self._redis

"""A durable store shared by many processes: a Redis Stream read through one consumer group."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from .base import StatusMark, StoredEvent, StoreStats, StoreUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

# Lua scripts, so that each change is atomic however many processes share the Redis.
# An event's id stays the same for its whole life; `entries` maps it to its current stream entry.
NOW = """
local now = redis.call('TIME')
local now_us = now[1] * 1000000 + now[2]
local now_ms = math.floor(now_us / 1000)
"""

TAKE = """
local function take(stream, entries, group, id)
    local entry = redis.call('HGET', entries, id)
    if not entry then return false end
    redis.call('XACK', stream, group, entry)
    redis.call('XDEL', stream, entry)
    redis.call('HDEL', entries, id)
    return true
end
"""

# KEYS: marker, stream, entries, ids. ARGV: event.
ENQUEUE = """
if not redis.call('SET', KEYS[1], 'queued', 'NX') then return 0 end
local id = tostring(redis.call('INCR', KEYS[4]))
redis.call('HSET', KEYS[3], id, redis.call('XADD', KEYS[2], '*', 'id', id, 'event', ARGV[1]))
return 1
"""

# KEYS: stream, entries, delayed, delayed events. ARGV: group, consumer, limit, visibility (ms).
CLAIM = (
    NOW
    + """
local limit = tonumber(ARGV[3])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_ms, 'LIMIT', 0, 100)) do
    local event = redis.call('HGET', KEYS[4], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('HDEL', KEYS[4], id)
    if event then
        redis.call('HSET', KEYS[2], id, redis.call('XADD', KEYS[1], '*', 'id', id, 'event', event))
    end
end
local claimed = {}
local cursor = '0-0'
repeat
    local page = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[4], cursor,
        'COUNT', limit - #claimed)
    cursor = page[1]
    for _, entry in ipairs(page[2]) do table.insert(claimed, entry) end
until cursor == '0-0' or #claimed >= limit
if #claimed < limit then
    local read = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', limit - #claimed,
        'STREAMS', KEYS[1], '>')
    if read then
        for _, entry in ipairs(read[1][2]) do table.insert(claimed, entry) end
    end
end
return claimed
"""
)

# KEYS: stream, entries, marker. ARGV: group, id, window (ms).
COMPLETE = (
    TAKE
    + """
take(KEYS[1], KEYS[2], ARGV[1], ARGV[2])
redis.call('SET', KEYS[3], 'handled', 'PX', ARGV[3])
"""
)

# KEYS: stream, entries, delayed, delayed events. ARGV: group, id, event, delay (ms).
RETRY_LATER = (
    TAKE
    + NOW
    + """
if not take(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[3], now_ms + tonumber(ARGV[4]), ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
return 1
"""
)

# KEYS: stream, entries, dead, dead events, marker. ARGV: group, id, event.
DEAD_LETTER = (
    TAKE
    + NOW
    + """
if not take(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[3], now_us, ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
if redis.call('GET', KEYS[5]) == 'queued' then redis.call('DEL', KEYS[5]) end
return 1
"""
)

# KEYS: stream, entries, dead, dead events, marker. ARGV: id, event.
# A dead letter whose key was accepted again stays dead: the newer event runs instead.
RETRY_DEAD = """
if redis.call('HEXISTS', KEYS[4], ARGV[1]) == 0 or redis.call('GET', KEYS[5]) == 'queued' then return 0 end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('SET', KEYS[5], 'queued')
redis.call('HSET', KEYS[2], ARGV[1], redis.call('XADD', KEYS[1], '*', 'id', ARGV[1], 'event', ARGV[2]))
return 1
"""

# KEYS: dead, dead events.
PURGE_DEAD = """
local count = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1], KEYS[2])
return count
"""

# KEYS: mark. ARGV: status, rank, seq, final (1 or 0), window (ms).
ADVANCE_STATUS = """
local current = redis.call('HMGET', KEYS[1], 'final', 'rank', 'seq')
if current[1] then
    local rank, seq = tonumber(current[2]), tonumber(current[3])
    local new_rank, new_seq = tonumber(ARGV[2]), tonumber(ARGV[3])
    if current[1] == '1' or new_rank < rank or (new_rank == rank and new_seq <= seq) then return 0 end
end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'rank', ARGV[2], 'seq', ARGV[3], 'final', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS: stream. ARGV: group, idle (ms). Only consumers holding nothing go, so no event is lost.
FORGET_CONSUMERS = """
local forgotten = 0
for _, fields in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
    local consumer = {}
    for i = 1, #fields, 2 do consumer[fields[i]] = fields[i + 1] end
    if consumer['pending'] == 0 and consumer['idle'] > tonumber(ARGV[2]) then
        redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], consumer['name'])
        forgotten = forgotten + 1
    end
end
return forgotten
"""

SCRIPTS = {
    "enqueue": ENQUEUE,
    "claim": CLAIM,
    "complete": COMPLETE,
    "retry_later": RETRY_LATER,
    "dead_letter": DEAD_LETTER,
    "retry_dead": RETRY_DEAD,
    "purge_dead": PURGE_DEAD,
    "advance_status": ADVANCE_STATUS,
    "forget_consumers": FORGET_CONSUMERS,
}


class RedisStore:
    """Events in a Redis Stream that every instance reads through one consumer group (`XREADGROUP`).

    An event a dead process held is claimed again by another (`XAUTOCLAIM`) once it has been held longer
    than the visibility timeout; retries wait in a sorted set of due times, dead letters in a sorted set
    and a hash, handled keys and status marks in keys that expire. For an acknowledged event to survive a
    crash of Redis itself, Redis must run with `appendonly yes` and `appendfsync always`.
    """

    durable = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "twilio_events",
        group: str = "workers",
        timeout: float = 5.0,
        retries: int = 2,
        max_connections: int = 50,
        forget_consumers_after: float = 86400.0,
    ) -> None:
        """`url`: `redis://host:6379/0` (or `rediss://`, `unix://`); `prefix`: of every key this store
        writes; `group`: the consumer group, the same for every instance sharing the work; `timeout`:
        seconds to connect, to wait for an answer or for a free connection; `retries`: of a command after
        a connection error; `max_connections`: open at once, more callers wait for one;
        `forget_consumers_after`: seconds after which `open()` drops idle consumers that hold nothing."""
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "RedisStore needs the redis package: pip install 'twilio-events[redis]'"
            ) from exc
        self.url = url
        self.prefix = prefix
        self.group = group
        self.timeout = timeout
        self.retries = retries
        self.max_connections = max_connections
        self.forget_consumers_after = forget_consumers_after
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._stream = f"{prefix}:stream"
        self._entries = f"{prefix}:entries"
        self._ids = f"{prefix}:ids"
        self._delayed = f"{prefix}:delayed"
        self._delayed_events = f"{prefix}:delayed:events"
        self._dead = f"{prefix}:dead"
        self._dead_events = f"{prefix}:dead:events"

    def __repr__(self) -> str:
        return f"RedisStore({_without_password(self.url)!r}, prefix={self.prefix!r})"

    async def open(self, *, recover: bool = True) -> None:
        # recovery needs nothing here: XAUTOCLAIM takes back what a dead consumer held
        if self._redis is not None:
            return
        import redis.asyncio
        from redis.asyncio.retry import Retry
        from redis.backoff import ExponentialBackoff

        try:
            pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.url,
                max_connections=self.max_connections,
                timeout=self.timeout,
                decode_responses=True,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), self.retries),
            )
        except ValueError as exc:  # e.g. a port that is not a number
            raise StoreUnavailable(f"invalid Redis URL {self!r}: {exc}") from None
        client = redis.asyncio.Redis.from_pool(pool)
        self._scripts = {name: client.register_script(source) for name, source in SCRIPTS.items()}
        try:
            with self._errors():
                try:
                    await client.xgroup_create(self._stream, self.group, id="0", mkstream=True)
                except redis.ResponseError as exc:
                    if "BUSYGROUP" not in str(exc):
                        raise
                idle_ms = _ms(self.forget_consumers_after)
                await self._scripts["forget_consumers"](keys=[self._stream], args=[self.group, idle_ms])
        except BaseException:
            await client.aclose()
            raise
        self._redis = client

    async def close(self) -> None:
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    async def ping(self) -> None:
        with self._errors():
            await self._client.ping()

    async def is_handled(self, key: str) -> bool:
        with self._errors():
            return await self._client.get(self._marker(key)) == "handled"

    async def mark_handled(self, key: str, window: float) -> None:
        with self._errors():
            await self._client.set(self._marker(key), "handled", px=_expiry_ms(window))

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        # The marker has no expiry while the event waits: a queued or running key is refused however long
        # the wait; `complete` gives it the window.
        event = _encode(StoredEvent("", key, channel, params, time.time()))
        keys = [self._marker(key), self._stream, self._entries, self._ids]
        with self._errors():
            return bool(await self._script("enqueue", keys, [event]))

    async def claim(self, consumer: str, limit: int, visibility_timeout: float) -> list[StoredEvent]:
        if limit <= 0:
            return []
        keys = [self._stream, self._entries, self._delayed, self._delayed_events]
        args: list[str | int] = [self.group, consumer, limit, _ms(visibility_timeout)]
        with self._errors():
            entries = await self._script("claim", keys, args)
        claimed = []
        for _entry_id, fields in entries:
            if fields:  # an entry deleted while it was held comes back empty from older Redis versions
                values = dict(zip(fields[::2], fields[1::2], strict=True))
                claimed.append(_decode(values["id"], values["event"]))
        return claimed

    async def complete(self, event: StoredEvent, window: float) -> None:
        with self._errors():
            keys = [self._stream, self._entries, self._marker(event.key)]
            await self._script("complete", keys, [self.group, event.id, _expiry_ms(window)])

    async def retry_later(self, event: StoredEvent, error: str, delay: float) -> None:
        retried = _encode(replace(event, attempts=event.attempts + 1, last_error=error))
        keys = [self._stream, self._entries, self._delayed, self._delayed_events]
        with self._errors():
            await self._script("retry_later", keys, [self.group, event.id, retried, _ms(delay)])

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        dead = _encode(replace(event, attempts=event.attempts + 1, last_error=error))
        keys = [self._stream, self._entries, self._dead, self._dead_events, self._marker(event.key)]
        with self._errors():
            await self._script("dead_letter", keys, [self.group, event.id, dead])

    async def dead_letters(self, limit: int = 100) -> list[StoredEvent]:
        if limit <= 0:
            return []
        with self._errors():
            return await self._dead_letters(await self._dead_ids(limit - 1))

    async def retry_dead(self, event_id: str | None = None) -> int:
        with self._errors():
            ids = await self._dead_ids(-1) if event_id is None else [event_id]
            queued = 0
            for event in await self._dead_letters(ids):
                keys = [self._stream, self._entries, self._dead, self._dead_events, self._marker(event.key)]
                reset = _encode(replace(event, attempts=0))
                queued += await self._script("retry_dead", keys, [event.id, reset])
            return queued

    async def purge_dead(self) -> int:
        with self._errors():
            return int(await self._script("purge_dead", [self._dead, self._dead_events], []))

    async def stats(self) -> StoreStats:
        with self._errors():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.xlen(self._stream)
                pipe.xpending(self._stream, self.group)
                pipe.zcard(self._delayed)
                pipe.zcard(self._dead)
                length, pending, delayed, dead = await pipe.execute()
        running = int(pending["pending"])
        return StoreStats(length - running + delayed, running, dead, {"delayed": delayed})

    async def last_status(self, sid: str) -> StatusMark | None:
        with self._errors():
            fields = await self._client.hmget(self._mark(sid), ["status", "rank", "seq", "final"])
        status, rank, seq, final = cast("list[str | None]", fields)
        if status is None or rank is None or seq is None:
            return None
        return StatusMark(status, (int(rank), int(seq)), final == "1")

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        rank, seq = mark.position
        args: list[str | int] = [mark.status, rank, seq, int(mark.final), _expiry_ms(window)]
        with self._errors():
            await self._script("advance_status", [self._mark(sid)], args)

    @property
    def _client(self) -> Redis:
        if self._redis is None:
            raise StoreUnavailable(f"{self!r} is not open")
        return self._redis

    async def _script(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        return await self._scripts[name](keys=keys, args=args, client=self._client)

    async def _dead_ids(self, last: int) -> list[str]:
        """The dead letters' ids, oldest first, up to index `last` (-1: all)."""
        return cast("list[str]", await self._client.zrange(self._dead, 0, last))

    async def _dead_letters(self, ids: list[str]) -> list[StoredEvent]:
        if not ids:
            return []
        events = cast("list[str | None]", await self._client.hmget(self._dead_events, ids))
        return [_decode(event_id, event) for event_id, event in zip(ids, events, strict=True) if event]

    def _marker(self, key: str) -> str:
        return f"{self.prefix}:key:{key}"

    def _mark(self, sid: str) -> str:
        return f"{self.prefix}:mark:{sid}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Redis errors (unreachable, timed out, out of memory, read-only) become StoreUnavailable."""
        from redis import RedisError

        try:
            yield
        except RedisError as exc:
            raise StoreUnavailable(f"Redis at {_without_password(self.url)}: {exc}") from exc


def _encode(event: StoredEvent) -> str:
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


def _decode(event_id: str, encoded: str) -> StoredEvent:
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


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _expiry_ms(seconds: float) -> int:
    """Milliseconds for an expiry, at least 1 (Redis refuses an expiry of 0)."""
    return max(1, round(seconds * 1000))


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))

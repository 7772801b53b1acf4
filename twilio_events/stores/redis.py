"""A durable store shared by many processes and machines: queues, leases and markers in one Redis."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, cast

from .base import SidHold, StatusMark, StoredEvent, StoreStats, StoreUnavailable
from .batching import Batcher
from .redis_codec import (
    Complete,
    Enqueue,
    SidClaim,
    SidRelease,
    decode,
    encode,
    expiry_ms,
    lost,
    ms,
    status_mark,
    without_password,
)
from .redis_scripts import SCRIPTS

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript


class RedisStore:
    """Events in Redis that every instance shares: a list of ready ids, leases in a sorted set by their
    end, retries in a sorted set by their due time, dead letters in a sorted set and a hash, handled keys
    and status marks in keys that expire (the layout is in `redis_scripts`).

    Every change is one Lua script, atomic across instances. Concurrent calls of the hot path (enqueue,
    complete, last_status) are grouped: one script call carries all of them, and each caller returns only
    once Redis has answered for its own write. For an acknowledged event to survive a crash of Redis
    itself, Redis must run with `appendonly yes` and `appendfsync always`.
    """

    durable = True

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "twilio_events",
        timeout: float = 5.0,
        retries: int = 2,
        max_connections: int = 50,
    ) -> None:
        """`url`: `redis://host:6379/0` (or `rediss://`, `unix://`); `prefix`: of every key this store
        writes, the same for every instance sharing the work; `timeout`: seconds to connect, to wait for
        an answer or for a free connection; `retries`: of a command after a connection error;
        `max_connections`: open at once, more callers wait for one."""
        try:
            import redis.asyncio  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "RedisStore needs the redis package: pip install 'twilio-events[redis]'"
            ) from exc
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.retries = retries
        self.max_connections = max_connections
        self._redis: Redis | None = None
        self._scripts: dict[str, AsyncScript] = {}
        self._enqueues = Batcher(self._enqueue_all)
        self._completions = Batcher(self._complete_all)
        self._status_reads = Batcher(self._last_statuses)
        self._sid_claims = Batcher(self._claim_sids)
        self._sid_releases = Batcher(self._release_sids)
        self._ids = f"{prefix}:ids"
        self._leases = f"{prefix}:leases"
        self._events = f"{prefix}:events"
        self._ready = f"{prefix}:ready"
        self._delayed = f"{prefix}:delayed"
        self._held = f"{prefix}:held"
        self._holders = f"{prefix}:holders"
        self._dead = f"{prefix}:dead"
        self._dead_events = f"{prefix}:dead:events"
        self._expiries = f"{prefix}:expiries"

    def __repr__(self) -> str:
        return f"RedisStore({without_password(self.url)!r}, prefix={self.prefix!r})"

    async def open(self, *, recover: bool = True, consumer: str | None = None) -> None:
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
        self._redis = client
        try:
            with self._errors():
                if recover:
                    old = [f"{self.prefix}:stream", f"{self.prefix}:entries", f"{self.prefix}:delayed:events"]
                    await self._script("migrate", [*old, self._events, self._ready], [])
                if recover and consumer is not None:
                    keys = [self._events, self._ready, self._held, self._holders]
                    await self._script("recover", keys, [consumer])
        except BaseException:
            self._redis = None
            await client.aclose()
            raise

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
            await self._client.set(self._marker(key), "handled", px=expiry_ms(window))

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        # The marker has no expiry while the event waits: a queued or running key is refused however long
        # the wait; `complete` gives it the window.
        self._check_open()
        event = encode(StoredEvent("", key, channel, params, time.time()))
        return await self._enqueues.submit(Enqueue(self._marker(key), event))

    async def claim(self, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
        if limit <= 0:
            return []
        keys = [self._events, self._ready, self._delayed, self._held, self._holders, self._leases]
        with self._errors():
            claimed = await self._script("claim", [*keys, self._expiries], [consumer, limit, ms(lease)])
        return [replace(decode(i, event), holder=consumer, lease=int(n)) for i, event, n in claimed]

    async def extend_leases(self, consumer: str, events: Sequence[StoredEvent], lease: float) -> list[str]:
        if not events:
            return []
        args: list[str | int] = [consumer, ms(lease)]
        for event in events:
            args += [event.id, event.lease]
        with self._errors():
            return cast("list[str]", await self._script("extend", [self._held, self._holders], args))

    async def complete(
        self, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None = None
    ) -> None:
        self._check_open()
        done = await self._completions.submit(
            Complete(event, self._marker(event.key), expiry_ms(window), status)
        )
        if not done:
            raise lost(event)

    async def retry_later(self, event: StoredEvent, error: str, delay: float, *, count: bool = True) -> None:
        retried = encode(replace(event, attempts=event.attempts + count, last_error=error))
        keys = [self._events, self._held, self._holders, self._delayed]
        args: list[str | int] = [event.id, event.lease, event.holder or "", retried, ms(delay)]
        with self._errors():
            if not await self._script("retry_later", keys, args):
                raise lost(event)

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        dead = encode(replace(event, attempts=event.attempts + 1, last_error=error))
        keys = [
            self._events,
            self._held,
            self._holders,
            self._dead,
            self._dead_events,
            self._marker(event.key),
        ]
        with self._errors():
            if not await self._script("dead_letter", keys, [event.id, event.lease, event.holder or "", dead]):
                raise lost(event)

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
                keys = [self._events, self._ready, self._dead, self._dead_events, self._marker(event.key)]
                reset = encode(replace(event, attempts=0))
                queued += await self._script("retry_dead", keys, [event.id, reset])
            return queued

    async def purge_dead(self) -> int:
        with self._errors():
            return int(await self._script("purge_dead", [self._dead, self._dead_events], []))

    async def stats(self) -> StoreStats:
        with self._errors():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.llen(self._ready)
                pipe.zcard(self._delayed)
                pipe.zcard(self._held)
                pipe.zcard(self._dead)
                pipe.hvals(self._holders)
                pipe.hgetall(self._expiries)
                pipe.lindex(self._ready, 0)
                ready, delayed, held, dead, holders, expiries, first = await pipe.execute()
            oldest = None
            event = None if first is None else await self._client.hget(self._events, first)
            if event is not None:
                oldest = decode(first, cast("str", event)).received_at
        consumers: dict[str, int] = {}
        for holder in holders:
            consumer = holder.partition(":")[2]
            consumers[consumer] = consumers.get(consumer, 0) + 1
        expired = {consumer: int(count) for consumer, count in expiries.items()}
        return StoreStats(ready + delayed, held, dead, {"delayed": delayed}, consumers, expired, oldest)

    async def held_by(self, consumer: str, limit: int = 100) -> list[StoredEvent]:
        with self._errors():
            holders = cast("dict[str, str]", await self._client.hgetall(self._holders))
            ids = sorted((i for i, h in holders.items() if h.partition(":")[2] == consumer), key=int)[:limit]
            if not ids:
                return []
            events = cast("list[str | None]", await self._client.hmget(self._events, ids))
        return [
            replace(decode(i, event), holder=consumer, lease=int(holders[i].partition(":")[0]))
            for i, event in zip(ids, events, strict=True)
            if event is not None
        ]

    async def release(self, consumer: str) -> int:
        keys = [self._events, self._ready, self._held, self._holders]
        with self._errors():
            return int(await self._script("recover", keys, [consumer]))

    async def claim_sid(self, sid: str, token: str, lease: float) -> SidHold:
        self._check_open()
        return await self._sid_claims.submit(SidClaim(sid, token, expiry_ms(lease)))

    async def extend_sid(self, sid: str, token: str, lease: float) -> bool:
        with self._errors():
            return bool(await self._script("extend_sid", [self._sid(sid)], [token, expiry_ms(lease)]))

    async def release_sid(self, sid: str, token: str, mark: StatusMark | None, window: float) -> None:
        self._check_open()
        await self._sid_releases.submit(SidRelease(sid, token, mark, expiry_ms(window)))

    async def last_status(self, sid: str) -> StatusMark | None:
        self._check_open()
        return await self._status_reads.submit(self._mark(sid))

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        rank, seq = mark.position
        args: list[str | int] = [mark.status, rank, seq, int(mark.final), expiry_ms(window)]
        with self._errors():
            await self._script("advance_status", [self._mark(sid)], args)

    # The grouped calls: one script call for every item waiting

    async def _enqueue_all(self, items: list[Enqueue]) -> list[bool | Exception]:
        keys = [self._events, self._ready, self._ids, *(item.marker for item in items)]
        with self._errors():
            added = await self._script("enqueue", keys, [item.event for item in items])
        return [bool(flag) for flag in added]

    async def _complete_all(self, items: list[Complete]) -> list[bool | Exception]:
        keys = [self._events, self._held, self._holders]
        args: list[str | int] = []
        for item in items:
            event = item.event
            args += [event.id, event.lease, event.holder or "", item.window_ms]
            if item.status is None:
                keys += [item.marker, item.marker]  # a mark key is expected here: none is touched
                args += [0, "", 0, 0, 0]
            else:
                sid, mark = item.status
                keys += [item.marker, self._mark(sid)]
                args += [1, mark.status, *mark.position, int(mark.final)]
        with self._errors():
            done = await self._script("complete", keys, args)
        return [bool(flag) for flag in done]

    async def _last_statuses(self, marks: list[str]) -> list[StatusMark | Exception | None]:
        with self._errors():
            found = await self._script("last_statuses", marks, [])
        return [status_mark(fields) for fields in found]

    async def _claim_sids(self, items: list[SidClaim]) -> list[SidHold | Exception]:
        keys: list[str] = []
        args: list[str | int] = []
        for item in items:
            keys += [self._sid(item.sid), self._mark(item.sid)]
            args += [item.token, item.lease_ms]
        with self._errors():
            answers = await self._script("claim_sids", keys, args)
        return [SidHold(held == 1, status_mark(mark)) for held, *mark in answers]

    async def _release_sids(self, items: list[SidRelease]) -> list[Exception | None]:
        keys: list[str] = []
        args: list[str | int] = []
        for item in items:
            keys += [self._sid(item.sid), self._mark(item.sid)]
            if item.mark is None:
                args += [item.token, 0, "", 0, 0, 0, item.window_ms]
            else:
                mark = item.mark
                args += [item.token, 1, mark.status, *mark.position, int(mark.final), item.window_ms]
        with self._errors():
            await self._script("release_sids", keys, args)
        return [None] * len(items)

    @property
    def _client(self) -> Redis:
        if self._redis is None:
            raise StoreUnavailable(f"{self!r} is not open")
        return self._redis

    def _check_open(self) -> None:
        if self._redis is None:
            raise StoreUnavailable(f"{self!r} is not open")

    async def _script(self, name: str, keys: list[str], args: list[str | int]) -> Any:
        return await self._scripts[name](keys=keys, args=args, client=self._client)

    async def _dead_ids(self, last: int) -> list[str]:
        """The dead letters' ids, oldest first, up to index `last` (-1: all)."""
        return cast("list[str]", await self._client.zrange(self._dead, 0, last))

    async def _dead_letters(self, ids: list[str]) -> list[StoredEvent]:
        if not ids:
            return []
        events = cast("list[str | None]", await self._client.hmget(self._dead_events, ids))
        return [decode(event_id, event) for event_id, event in zip(ids, events, strict=True) if event]

    def _marker(self, key: str) -> str:
        return f"{self.prefix}:key:{key}"

    def _mark(self, sid: str) -> str:
        return f"{self.prefix}:mark:{sid}"

    def _sid(self, sid: str) -> str:
        return f"{self.prefix}:sid:{sid}"

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Redis errors (unreachable, timed out, out of memory, read-only) become StoreUnavailable."""
        from redis import RedisError

        try:
            yield
        except RedisError as exc:
            raise StoreUnavailable(f"Redis at {without_password(self.url)}: {exc}") from exc

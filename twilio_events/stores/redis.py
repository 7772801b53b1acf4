"""A durable store shared by many processes and machines: queues, leases and markers in one Redis."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from .base import LeaseLost, StatusMark, StoredEvent, StoreStats, StoreUnavailable
from .batching import Batcher
from .redis_scripts import SCRIPTS

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript


@dataclass(frozen=True, slots=True)
class _Enqueue:
    marker: str
    event: str


@dataclass(frozen=True, slots=True)
class _Complete:
    event: StoredEvent
    marker: str
    window_ms: int
    status: tuple[str, StatusMark] | None


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
        self._ids = f"{prefix}:ids"
        self._leases = f"{prefix}:leases"
        self._events = f"{prefix}:events"
        self._ready = f"{prefix}:ready"
        self._delayed = f"{prefix}:delayed"
        self._held = f"{prefix}:held"
        self._holders = f"{prefix}:holders"
        self._dead = f"{prefix}:dead"
        self._dead_events = f"{prefix}:dead:events"

    def __repr__(self) -> str:
        return f"RedisStore({_without_password(self.url)!r}, prefix={self.prefix!r})"

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
            await self._client.set(self._marker(key), "handled", px=_expiry_ms(window))

    async def enqueue(self, key: str, channel: str, params: list[tuple[str, str]], window: float) -> bool:
        # The marker has no expiry while the event waits: a queued or running key is refused however long
        # the wait; `complete` gives it the window.
        self._check_open()
        event = _encode(StoredEvent("", key, channel, params, time.time()))
        return await self._enqueues.submit(_Enqueue(self._marker(key), event))

    async def claim(self, consumer: str, limit: int, lease: float) -> list[StoredEvent]:
        if limit <= 0:
            return []
        keys = [self._events, self._ready, self._delayed, self._held, self._holders, self._leases]
        with self._errors():
            claimed = await self._script("claim", keys, [consumer, limit, _ms(lease)])
        return [replace(_decode(i, event), holder=consumer, lease=int(n)) for i, event, n in claimed]

    async def extend_leases(self, consumer: str, events: Sequence[StoredEvent], lease: float) -> list[str]:
        if not events:
            return []
        args: list[str | int] = [consumer, _ms(lease)]
        for event in events:
            args += [event.id, event.lease]
        with self._errors():
            return cast("list[str]", await self._script("extend", [self._held, self._holders], args))

    async def complete(
        self, event: StoredEvent, window: float, status: tuple[str, StatusMark] | None = None
    ) -> None:
        self._check_open()
        done = await self._completions.submit(
            _Complete(event, self._marker(event.key), _expiry_ms(window), status)
        )
        if not done:
            raise _lost(event)

    async def retry_later(self, event: StoredEvent, error: str, delay: float) -> None:
        retried = _encode(replace(event, attempts=event.attempts + 1, last_error=error))
        keys = [self._events, self._held, self._holders, self._delayed]
        args: list[str | int] = [event.id, event.lease, event.holder or "", retried, _ms(delay)]
        with self._errors():
            if not await self._script("retry_later", keys, args):
                raise _lost(event)

    async def dead_letter(self, event: StoredEvent, error: str) -> None:
        dead = _encode(replace(event, attempts=event.attempts + 1, last_error=error))
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
                raise _lost(event)

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
                reset = _encode(replace(event, attempts=0))
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
                ready, delayed, held, dead = await pipe.execute()
        return StoreStats(ready + delayed, held, dead, {"delayed": delayed})

    async def last_status(self, sid: str) -> StatusMark | None:
        self._check_open()
        return await self._status_reads.submit(self._mark(sid))

    async def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        rank, seq = mark.position
        args: list[str | int] = [mark.status, rank, seq, int(mark.final), _expiry_ms(window)]
        with self._errors():
            await self._script("advance_status", [self._mark(sid)], args)

    # The grouped calls: one script call for every item waiting

    async def _enqueue_all(self, items: list[_Enqueue]) -> list[bool | Exception]:
        keys = [self._events, self._ready, self._ids, *(item.marker for item in items)]
        with self._errors():
            added = await self._script("enqueue", keys, [item.event for item in items])
        return [bool(flag) for flag in added]

    async def _complete_all(self, items: list[_Complete]) -> list[bool | Exception]:
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
        return [_status_mark(fields) for fields in found]

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


def _lost(event: StoredEvent) -> LeaseLost:
    return LeaseLost(f"event {event.id} ({event.key}) is no longer held by {event.holder}")


def _status_mark(fields: list[str | None]) -> StatusMark | None:
    status, rank, seq, final = fields
    if status is None or rank is None or seq is None:
        return None
    return StatusMark(status, (int(rank), int(seq)), final == "1")


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

"""Where accepted events, handled keys and status marks are kept: memory, SQLite or Redis."""

from __future__ import annotations

from .base import LeaseLost, SidHold, StatusMark, Store, StoredEvent, StoreStats, StoreUnavailable
from .memory import MemoryStore

__all__ = [
    "LeaseLost",
    "MemoryStore",
    "SidHold",
    "StatusMark",
    "Store",
    "StoreStats",
    "StoreUnavailable",
    "StoredEvent",
    "open_store",
]


def open_store(url: str) -> Store:
    """A store from a URL: `memory://`, `sqlite:///path/to/file.db` or `redis://host:6379/0`."""
    if url.startswith("memory:"):
        return MemoryStore()
    if url.startswith("sqlite:///"):
        from .sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(url)
    raise ValueError(f"unknown store URL {url!r}: use memory://, sqlite:///path.db or redis://host:port/db")

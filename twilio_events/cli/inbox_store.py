"""The store `twilio-events inbox` looks into: checked, opened without taking anything, closed."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from ..stores import Store, StoreUnavailable, open_store
from .output import CommandError, one_line

T = TypeVar("T")

STORE_ENV = "TWILIO_EVENTS_STORE"
NO_STORE = (
    "which store? pass --store sqlite:///twilio_events.db or --store redis://host:6379/0, the store the "
    f"service uses (or set {STORE_ENV})"
)


def connect(url: str | None) -> Store:
    """The store at `url`, checked as far as can be without opening it; CommandError when it cannot be."""
    if not url:
        raise CommandError(NO_STORE)
    if url.startswith("memory:"):
        raise CommandError(
            f"{url}: a memory store lives and dies with its process, so there is nothing to look at; give "
            "the sqlite:/// or redis:// URL of the service's store"
        )
    if url.startswith("sqlite:///"):
        check_sqlite_file(url.removeprefix("sqlite:///"))
    try:
        return open_store(url)
    except ValueError:
        raise CommandError(
            f"unknown store URL {url!r}: use sqlite:///path/to/file.db or redis://host:6379/0"
        ) from None
    except ImportError as exc:
        raise CommandError(one_line(str(exc))) from None


def run_on(store: Store, action: Callable[[Store], Awaitable[T]]) -> T:
    """Open the store, run `action` on it and close it; an unreachable store is a CommandError."""

    async def main() -> T:
        """`action` between opening and closing the store."""
        # without recovery: the service may be running, and the events it runs are its own
        await store.open(recover=False)
        try:
            return await action(store)
        finally:
            await store.close()

    try:
        return asyncio.run(main())
    except StoreUnavailable as exc:
        raise CommandError(f"the store is unavailable: {one_line(str(exc))}") from None


def check_sqlite_file(path: str) -> None:
    """Refuse a path that is not an existing twilio_events SQLite store, rather than create one there."""
    if not path:
        raise CommandError("sqlite:/// needs the path of the file, e.g. sqlite:///twilio_events.db")
    file = Path(path)
    if not file.exists():
        where = (
            "" if file.is_absolute() else f", relative to {Path.cwd()} (sqlite:////PATH for an absolute path)"
        )
        raise CommandError(f"no such store file: {path}{where}")
    if not file.is_file():
        raise CommandError(f"{path} is not a file")
    try:
        with contextlib.closing(sqlite3.connect(file.resolve().as_uri() + "?mode=ro", uri=True)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'events'")
            is_store = found.fetchone() is not None
    except sqlite3.Error as exc:
        raise CommandError(f"{path}: cannot read it as a SQLite database: {exc}") from None
    if not is_store:
        raise CommandError(
            f"{path} is a SQLite database but not a twilio_events store (it has no events table)"
        )

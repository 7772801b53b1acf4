"""`twilio-events inbox stats|list|retry|purge`: what a durable store holds, and its dead letters queued
again or deleted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar

from ..stores import Store, StoredEvent, StoreUnavailable, open_store
from .options import FORMATTER, add_command, env
from .output import CommandError, one_line, table

T = TypeVar("T")

STORE_ENV = "TWILIO_EVENTS_STORE"
DEFAULT_LIMIT = 100
ERROR_WIDTH = 60
"""Characters of each dead letter's last error shown by `list`."""

NO_STORE = (
    "which store? pass --store sqlite:///twilio_events.db or --store redis://host:6379/0, the store the "
    f"service uses (or set {STORE_ENV})"
)


def add_parser(commands: Any) -> None:
    """`inbox` and its actions: `stats`, `list`, `retry` and `purge`."""
    inbox = add_command(
        commands,
        "inbox",
        "Look into the store of a service with durable delivery: counts, dead letters, and dead "
        "letters queued again or deleted.",
        _EXAMPLES,
    )
    store_help = (
        "the service's store: sqlite:///path/to/file.db (relative to the current directory; "
        "sqlite:////abs/path.db for an absolute path) or redis://host:6379/0 (env TWILIO_EVENTS_STORE)"
    )
    inbox.add_argument("--store", metavar="URL", help=store_help)
    # --store is accepted after the action too; SUPPRESS keeps a value given before it
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)
    actions = inbox.add_subparsers(title="actions", metavar="ACTION", required=True, dest="action")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        """One action, accepting --store too."""
        parser: argparse.ArgumentParser = actions.add_parser(
            name,
            parents=[store],
            help=help,
            description=help,
            epilog=_EXAMPLES,
            formatter_class=FORMATTER,
            allow_abbrev=False,
        )
        return parser

    action("stats", "How many events are queued (waiting to run or to be retried), running and dead.")
    listing = action("list", "List the dead letters, oldest first.")
    listing.add_argument("--dead", action="store_true", help="list the dead letters (required)")
    listing.add_argument(
        "--limit", type=int, default=100, metavar="N", help="show at most N dead letters (default 100)"
    )
    retry = action("retry", "Queue dead letters again, their attempts reset; the service's workers run them.")
    retry.add_argument(
        "id", nargs="?", metavar="ID", help="the dead letter's ID, as `inbox list --dead` shows"
    )
    retry.add_argument("--all-dead", action="store_true", help="queue every dead letter again")
    purge = action("purge", "Delete every dead letter, without asking: --dead is required.")
    purge.add_argument("--dead", action="store_true", help="delete the dead letters (required)")


def execute(args: argparse.Namespace) -> int:
    """Run the chosen action on the store of --store (or TWILIO_EVENTS_STORE)."""
    url = args.store or env(STORE_ENV)
    if args.action == "stats":
        return stats(url)
    if args.action == "list":
        return list_dead(url, args.dead, args.limit)
    if args.action == "retry":
        return retry(url, args.id, args.all_dead)
    return purge(url, args.dead)


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
        _check_sqlite_file(url.removeprefix("sqlite:///"))
    try:
        return open_store(url)
    except ValueError:
        raise CommandError(
            f"unknown store URL {url!r}: use sqlite:///path/to/file.db or redis://host:6379/0"
        ) from None
    except ImportError as exc:
        raise CommandError(one_line(str(exc))) from None


def stats(url: str | None, out: TextIO = sys.stdout) -> int:
    """`inbox stats`: how many events are queued, running and dead."""
    store = connect(url)
    counts = _run(store, lambda store: store.stats())
    delayed = counts.extra.get("delayed", 0)
    waiting = f"  ({delayed} waiting to be retried)" if delayed else ""
    print(f"store: {store!r}", file=out)
    print(f"queued   {counts.queued}{waiting}", file=out)
    print(f"running  {counts.running}", file=out)
    print(f"dead     {counts.dead}", file=out)
    return 0


def list_dead(url: str | None, dead: bool, limit: int = DEFAULT_LIMIT, out: TextIO = sys.stdout) -> int:
    """`inbox list --dead`: the oldest dead letters, up to `limit`."""
    if not dead:
        raise CommandError("list what? only dead letters can be listed: `inbox list --dead`")
    if limit < 1:
        raise CommandError(f"--limit {limit}: give 1 or more")
    store = connect(url)

    async def oldest(store: Store) -> tuple[list[StoredEvent], int]:
        """The oldest dead letters and how many there are in all."""
        return await store.dead_letters(limit), (await store.stats()).dead

    events, total = _run(store, oldest)
    if not events:
        print("no dead letters", file=out)
        return 0
    rows = [
        [
            event.id,
            event.key,
            event.channel,
            str(event.attempts),
            one_line(event.last_error or "", ERROR_WIDTH),
            _time(event.received_at),
        ]
        for event in events
    ]
    header = ["ID", "KEY", "CHANNEL", "ATTEMPTS", "LAST ERROR", "RECEIVED (UTC)"]
    print(table(header, rows, indent=""), file=out)
    if total > len(events):
        print(f"(the oldest {len(events)} of {total} dead letters: --limit N to see more)", file=out)
    return 0


def retry(url: str | None, event_id: str | None, all_dead: bool, out: TextIO = sys.stdout) -> int:
    """`inbox retry ID` or `inbox retry --all-dead`: queue dead letters again, their attempts reset."""
    if (event_id is None) == (not all_dead):
        raise CommandError("retry which? give a dead letter's ID (see `inbox list --dead`) or --all-dead")
    store = connect(url)
    if event_id is not None:
        queued, still_dead = _run(store, lambda store: _retry_one(store, event_id))
        if not queued:
            if still_dead is None:
                raise CommandError(
                    f"no dead letter with ID {event_id!r} (see `twilio-events inbox list --dead`)"
                )
            raise CommandError(
                f"dead letter {event_id} stays dead: a newer callback with its key {still_dead.key} is "
                "queued or running, and runs instead"
            )
        print(f"queued dead letter {event_id} again", file=out)
        return 0

    async def retry_all(store: Store) -> tuple[int, int]:
        """How many dead letters were queued again, and how many stay dead."""
        return await store.retry_dead(None), (await store.stats()).dead

    queued, left = _run(store, retry_all)
    if not queued and not left:
        print("no dead letters to queue again", file=out)
        return 0
    print(f"queued {_letters(queued)} again", file=out)
    if left:
        print(
            f"{_letters(left)} stay dead: a newer callback with the same key is queued or running "
            "(or it failed again meanwhile)",
            file=out,
        )
    return 0


def purge(url: str | None, dead: bool, out: TextIO = sys.stdout) -> int:
    """`inbox purge --dead`: delete every dead letter."""
    if not dead:
        raise CommandError("purge deletes every dead letter for good: say so with `inbox purge --dead`")
    store = connect(url)
    deleted = _run(store, lambda store: store.purge_dead())
    print(f"deleted {_letters(deleted)}" if deleted else "no dead letters to delete", file=out)
    return 0


async def _retry_one(store: Store, event_id: str) -> tuple[int, StoredEvent | None]:
    """How many were queued (0 or 1) and, when none, the dead letter that stayed dead (None: no such ID)."""
    queued = await store.retry_dead(event_id)
    if queued:
        return queued, None
    for event in await store.dead_letters(sys.maxsize):
        if event.id == event_id:
            return 0, event
    return 0, None


def _run(store: Store, action: Callable[[Store], Awaitable[T]]) -> T:
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


def _check_sqlite_file(path: str) -> None:
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


def _letters(count: int) -> str:
    """ "1 dead letter", "2 dead letters"."""
    return f"{count} dead letter{'' if count == 1 else 's'}"


def _time(timestamp: float) -> str:
    """A Unix time as UTC date and time to the second."""
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


_EXAMPLES = """\
examples:
  twilio-events inbox --store sqlite:///twilio_events.db stats
  twilio-events inbox --store redis://localhost:6379/0 list --dead --limit 20
  export TWILIO_EVENTS_STORE=sqlite:///twilio_events.db
  twilio-events inbox retry 42                            queue dead letter 42 again
  twilio-events inbox retry --all-dead
  twilio-events inbox purge --dead                        delete every dead letter (no confirmation)

Use the store URL the service uses (TwilioEvents(store=...)); TwilioEvents(delivery="durable") without a
store keeps its events in sqlite:///twilio_events.db. Exit code 1, with one line saying why, when the
store cannot be reached or has no such dead letter.
"""

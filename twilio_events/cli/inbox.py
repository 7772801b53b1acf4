"""`twilio-events inbox stats|list|retry|purge|release`: what a durable store holds, its dead letters
queued again or deleted, and the events of a dead consumer made ready again (inbox_held.py)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from ..stores import Store, StoredEvent
from .inbox_held import list_held, release
from .inbox_store import STORE_ENV, connect, run_on
from .options import FORMATTER, add_command, env
from .output import CommandError, one_line, table

DEFAULT_LIMIT = 100
ERROR_WIDTH = 60
"""Characters of each dead letter's last error shown by `list`."""
TRACEBACK_LINES = 6
"""Lines of each dead letter's traceback shown by `list --dead` (all of them with --verbose)."""


def add_parser(commands: Any) -> None:
    """`inbox` and its actions: `stats`, `list`, `retry`, `purge` and `release`."""
    inbox = add_command(
        commands,
        "inbox",
        "Look into the store of a service with durable delivery: counts per consumer, dead letters and "
        "their tracebacks, dead letters queued again or deleted, and a dead consumer's events released.",
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

    action(
        "stats",
        "How many events are queued (waiting to run or to be retried), running and dead; the oldest "
        "waiting event's age; and per consumer, the events it runs and its lease expiries.",
    )
    listing = action("list", "List the dead letters, or the events a consumer holds, oldest first.")
    which = listing.add_mutually_exclusive_group()
    which.add_argument("--dead", action="store_true", help="list the dead letters, with their tracebacks")
    which.add_argument("--held-by", metavar="NAME", help="list the events consumer NAME holds")
    listing.add_argument(
        "--limit", type=int, default=100, metavar="N", help="show at most N events (default 100)"
    )
    listing.add_argument(
        "-v", "--verbose", action="store_true", help="--dead: show each traceback whole, not its end"
    )
    freeing = action(
        "release",
        "Make every event consumer NAME holds ready to run again at once: for a consumer that is gone "
        "(its events would otherwise wait for their leases to run out).",
    )
    freeing.add_argument("name", metavar="NAME", help="the consumer, as `inbox stats` names it")
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
        if args.held_by is not None:
            return list_held(url, args.held_by, args.limit)
        return list_dead(url, args.dead, args.limit, verbose=args.verbose)
    if args.action == "release":
        return release(url, args.name)
    if args.action == "retry":
        return retry(url, args.id, args.all_dead)
    return purge(url, args.dead)


def stats(url: str | None, out: TextIO = sys.stdout) -> int:
    """`inbox stats`: how many events are queued, running and dead."""
    store = connect(url)
    counts = run_on(store, lambda store: store.stats())
    delayed = counts.extra.get("delayed", 0)
    waiting = f"  ({delayed} waiting to be retried)" if delayed else ""
    print(f"store: {store!r}", file=out)
    print(f"queued   {counts.queued}{waiting}", file=out)
    print(f"running  {counts.running}", file=out)
    print(f"dead     {counts.dead}", file=out)
    oldest = counts.oldest_waiting
    print(f"oldest waiting  {_age(time.time() - oldest) if oldest is not None else 'none'}", file=out)
    names = sorted(counts.consumers.keys() | counts.expiries.keys())
    if names:
        rows = [[n, str(counts.consumers.get(n, 0)), str(counts.expiries.get(n, 0))] for n in names]
        print(table(["CONSUMER", "RUNNING", "LEASE EXPIRIES"], rows, indent=""), file=out)
    return 0


def list_dead(
    url: str | None,
    dead: bool,
    limit: int = DEFAULT_LIMIT,
    out: TextIO = sys.stdout,
    *,
    verbose: bool = False,
) -> int:
    """`inbox list --dead`: the oldest dead letters, up to `limit`, then the end of each one's traceback
    (all of it with `verbose`)."""
    if not dead:
        raise CommandError(
            "list what? `inbox list --dead` (the dead letters) or `inbox list --held-by NAME` (a consumer's)"
        )
    if limit < 1:
        raise CommandError(f"--limit {limit}: give 1 or more")
    store = connect(url)

    async def oldest(store: Store) -> tuple[list[StoredEvent], int]:
        """The oldest dead letters and how many there are in all."""
        return await store.dead_letters(limit), (await store.stats()).dead

    events, total = run_on(store, oldest)
    if not events:
        print("no dead letters", file=out)
        return 0
    rows = [
        [
            event.id,
            event.key,
            event.channel,
            str(event.attempts),
            one_line(event.error_line, ERROR_WIDTH),
            _time(event.received_at),
        ]
        for event in events
    ]
    header = ["ID", "KEY", "CHANNEL", "ATTEMPTS", "LAST ERROR", "RECEIVED (UTC)"]
    print(table(header, rows, indent=""), file=out)
    if total > len(events):
        print(f"(the oldest {len(events)} of {total} dead letters: --limit N to see more)", file=out)
    for event in events:
        lines = (event.last_error or "").splitlines()
        if len(lines) < 2:
            continue  # no traceback: the table shows the whole error
        shown = lines if verbose else lines[-TRACEBACK_LINES:]
        cut = "" if len(shown) == len(lines) else f", its last {len(shown)} lines (--verbose: all)"
        print(f"\ndead letter {event.id} ({event.key}){cut}:", file=out)
        print("\n".join(("  " + line).rstrip() for line in shown), file=out)
    return 0


def retry(url: str | None, event_id: str | None, all_dead: bool, out: TextIO = sys.stdout) -> int:
    """`inbox retry ID` or `inbox retry --all-dead`: queue dead letters again, their attempts reset."""
    if (event_id is None) == (not all_dead):
        raise CommandError("retry which? give a dead letter's ID (see `inbox list --dead`) or --all-dead")
    store = connect(url)
    if event_id is not None:
        queued, still_dead = run_on(store, lambda store: _retry_one(store, event_id))
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

    queued, left = run_on(store, retry_all)
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
    deleted = run_on(store, lambda store: store.purge_dead())
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


def _letters(count: int) -> str:
    """ "1 dead letter", "2 dead letters"."""
    return f"{count} dead letter{'' if count == 1 else 's'}"


def _age(seconds: float) -> str:
    """A duration the way a person reads it: 4.2 s, 3 min 5 s, 2 h 10 min."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


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
  twilio-events inbox list --dead --verbose               each dead letter's whole traceback
  twilio-events inbox list --held-by web1:2               what consumer web1:2 holds
  twilio-events inbox release web1:2                      a dead consumer's events, ready again at once

Use the store URL the service uses (TwilioEvents(store=...)); TwilioEvents(delivery="durable") without a
store keeps its events in sqlite:///twilio_events.db. Exit code 1, with one line saying why, when the
store cannot be reached or has no such dead letter.
"""

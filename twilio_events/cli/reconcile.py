"""`twilio-events reconcile TARGET`: ask Twilio's REST API about the calls and messages the service is
still waiting on, and deliver the final statuses its callbacks missed (or, with --dry-run, list them)."""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from typing import Any

from ..config import ConfigurationError
from ..reconcile import Recovery
from .loader import load_service
from .options import add_command, env
from .output import CommandError, table

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def add_parser(commands: Any) -> None:
    """`reconcile` and its options."""
    parser = add_command(
        commands,
        "reconcile",
        "Check the calls and messages a service (with reconcile_after set) still waits on against "
        "Twilio's REST API, and deliver the final statuses Twilio's callbacks missed.",
        _EXAMPLES,
    )
    parser.add_argument("target", metavar="TARGET", nargs="?", help="the app: file.py, module or module:attr")
    parser.add_argument(
        "--since",
        metavar="AGE",
        help="only calls and messages last seen within AGE (90s, 30m, 1h, 2d); default: every one whose "
        "last status is older than the app's reconcile_after",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what Twilio reports; deliver nothing")


def execute(args: argparse.Namespace) -> int:
    """Run one reconciliation pass and print what it found."""
    target = args.target or env("TWILIO_EVENTS_APP")
    if not target:
        raise CommandError("which app? give TARGET (file.py, module or module:attr) or set TWILIO_EVENTS_APP")
    since = parse_age(args.since) if args.since else None
    service = load_service(target)
    app = service.events
    if app is None:
        raise CommandError(f"{target} holds no TwilioEvents app")
    if app.reconcile_after is None:
        raise CommandError(f"reconciliation is off for {target}: set TwilioEvents(reconcile_after=...)")
    if not app.store.durable:
        raise CommandError(
            f"{target} keeps its watchlist in memory (inline delivery without store=), which only the "
            "running service sees: give it a SQLite or Redis store (store= or TWILIO_EVENTS_STORE)"
        )
    try:
        found = asyncio.run(app.reconcile(since=since, dry_run=args.dry_run))
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from None
    answered = [recovery for recovery in found if recovery.error is None]
    _report(answered, dry_run=args.dry_run)
    failed = [recovery for recovery in found if recovery.error is not None]
    if failed:
        raise CommandError(
            f"could not ask Twilio about {len(failed)} call(s) or message(s) (they wait for the next pass): "
            f"{failed[0].error}"
        )
    return 0


def parse_age(text: str) -> float:
    """Seconds in "90s", "30m", "1h", "2d" (or a bare number of seconds)."""
    match = _DURATION.match(text)
    if match is None:
        raise CommandError(f"--since {text!r}: give an age such as 90s, 30m, 1h or 2d")
    return float(match[1]) * _UNITS[match[2]]


def _report(found: list[Recovery], *, dry_run: bool) -> None:
    verb = "would deliver" if dry_run else "delivered"
    rows = [
        [
            r.channel,
            r.sid,
            r.last_status,
            r.twilio_status,
            verb if (dry_run or r.delivered) else "already handled",
        ]
        for r in found
    ]
    if rows:
        print(table(["CHANNEL", "SID", "LAST HANDLED", "TWILIO REPORTS", "OUTCOME"], rows))
    else:
        print(
            "nothing to deliver: Twilio reports no later status for any call or message waiting",
            file=sys.stdout,
        )
    print(f"{sum(1 for r in found if dry_run or r.delivered)} status(es) {verb}")


_EXAMPLES = """\
examples:
  twilio-events reconcile app.py                 deliver what Twilio's callbacks missed, now
  twilio-events reconcile app.py --since 1h --dry-run
"""

"""`run --workers N`: how many server processes share the listeners, and what `run` says about them.

Not to be confused with `TwilioEvents(workers=64)`, the durable handlers one process runs at once: this
is whole server processes, each with its own event loop and, in durable mode, its own `workers`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

from ..supervisor import SHARED_STORE, can_fork, per_process_dedupe
from .options import env
from .output import CommandError

if TYPE_CHECKING:
    from .service import Service

WORKERS_ENV = "TWILIO_EVENTS_WORKERS"


def add_option(parser: argparse.ArgumentParser) -> None:
    """`--workers N`, alias `--processes N`."""
    parser.add_argument(
        "--workers",
        "--processes",
        dest="workers",
        metavar="N",
        help="server processes sharing the listeners, e.g. one per CPU core (env TWILIO_EVENTS_WORKERS; "
        "default 1); not TwilioEvents(workers=...), the durable handlers each process runs at once",
    )


def processes(args: argparse.Namespace, *, reload: bool) -> int:
    """The number of server processes asked for; a CommandError for a bad value or a clash."""
    given, source = (args.workers, "--workers") if args.workers else (env(WORKERS_ENV), WORKERS_ENV)
    if given is None:
        return 1
    if not given.strip().isdigit() or int(given) < 1:
        raise CommandError(f"{source}: {given!r} is not a number of processes (1 or more)")
    count = int(given)
    if count > 1 and reload:
        raise CommandError(f"--reload serves one process: leave out {source} (or set it to 1)")
    if count > 1 and not can_fork():
        raise CommandError(f"{source} {count} needs a POSIX system (os.fork); serve one process here")
    return count


def summary_line(count: int) -> str:
    """How many processes serve, for the start-up summary."""
    if count == 1:
        return "One server process serves every listener (--workers N for more)."
    return f"{count} server processes share every listener (--workers {count}); each has its own limits."


def warn_about_dedupe(service: Service, count: int) -> None:
    """Say loudly when each process would de-duplicate only what it received (a memory store)."""
    app = service.events
    fix = f"--store sqlite:///twilio_events.db, or {SHARED_STORE}"
    warning = per_process_dedupe(app.store.durable, count, fix) if app is not None else None
    if warning:
        print(f"\n*** WARNING: {warning} ***\n", file=sys.stderr, flush=True)


def dedupe_warning_said_once(record: logging.LogRecord) -> bool:
    """Drop the library's own log line of that warning: `run` prints it itself, once."""
    return "each process de-duplicates only" not in record.getMessage()

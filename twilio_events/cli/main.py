"""The `twilio-events` entry point: each sub-command's name mapped to its module, and `main()`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any, Protocol

from .. import __version__
from . import configure, inbox, reconcile, run, simulate
from .options import FORMATTER
from .output import CommandError


class Command(Protocol):
    """What a sub-command's module provides."""

    def add_parser(self, commands: Any) -> None:
        """Add the sub-command and its arguments to the `commands` of the main parser."""

    def execute(self, args: argparse.Namespace) -> int:
        """Run the sub-command; return its exit code, or raise CommandError."""


COMMANDS: dict[str, Command] = {
    "run": run,
    "simulate": simulate,
    "configure": configure,
    "inbox": inbox,
    "reconcile": reconcile,
}
"""Each sub-command's module, in the order `--help` lists them."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: the process's) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    args.argv = argv
    try:
        return COMMANDS[args.command].execute(args)
    except CommandError as exc:
        print(f"twilio-events: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: every sub-command of COMMANDS with its options."""
    parser = argparse.ArgumentParser(
        prog="twilio-events",
        description="Run a TwilioEvents service, send it simulated Twilio callbacks, point a Twilio "
        "phone number at it, and look into its durable store.",
        epilog=_EXAMPLES,
        formatter_class=FORMATTER,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"twilio-events {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    for command in COMMANDS.values():
        command.add_parser(commands)
    return parser


_EXAMPLES = """\
examples:
  twilio-events run examples/call_status.py              serve the app on port 8090
  twilio-events simulate call --lifecycle                 send it a whole call, signed like Twilio
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/
  twilio-events inbox --store sqlite:///twilio_events.db stats
  twilio-events reconcile app.py --since 1h --dry-run     what Twilio's callbacks missed

Run `twilio-events COMMAND --help` for each command's options and environment variables.
"""

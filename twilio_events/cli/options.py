"""What the sub-commands share: options read from environment variables, and how a sub-command's parser
is made."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from typing import Any

from .output import CommandError

DEFAULT_PORT = 8090
PORT_ENV = "TWILIO_EVENTS_PORT"
FORMATTER = argparse.RawDescriptionHelpFormatter


def env(name: str) -> str | None:
    """The variable's value, or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flag(name: str) -> bool | None:
    """A yes/no variable: None when unset; 1/true/yes/on or 0/false/no/off."""
    value = env(name)
    if value is None:
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise CommandError(f"{name}={value!r}: expected true or false")


def split_list(values: Sequence[str] | None) -> list[str]:
    """Repeated options and comma- or space-separated lists, flattened."""
    return [item for value in values or () for item in re.split(r"[,\s]+", value) if item]


def ports(values: Sequence[str], source: str) -> list[int]:
    """Port numbers, each 1-65535."""
    result = []
    for value in split_list(values):
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise CommandError(f"{source}: {value!r} is not a port number (1-65535)")
        result.append(int(value))
    return result


def sink_url(url: str, sink_path: str) -> str:
    """An Event Streams sink's URL: `sink_path` below the service's URL (the URL itself when it is empty)."""
    below = sink_path.strip("/")
    return url.rstrip("/") + "/" + below if below else url


def add_command(commands: Any, name: str, help: str, epilog: str, **kwargs: Any) -> argparse.ArgumentParser:
    """A sub-command's parser, its help text doubling as its description, with examples after it."""
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=help,
        epilog=epilog,
        formatter_class=FORMATTER,
        allow_abbrev=False,
        **kwargs,
    )
    return parser

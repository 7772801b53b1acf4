"""What a served process bounds: the time to receive a request, open connections and idle keep-alive.

`app.run()` and `twilio-events run` enforce these (see connections.py); under another server they have
no effect, and the server or a reverse proxy in front of it must bound the same things.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

READ_TIMEOUT_ENV = "TWILIO_EVENTS_READ_TIMEOUT"
MAX_CONNECTIONS_ENV = "TWILIO_EVENTS_MAX_CONNECTIONS"
KEEP_ALIVE_TIMEOUT_ENV = "TWILIO_EVENTS_KEEP_ALIVE_TIMEOUT"

N = TypeVar("N", int, float)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The read deadline of one request, the cap on open connections, and the idle keep-alive time."""

    read_timeout: float = 10.0
    """Seconds a client has to send one whole request (head and body), from its first byte or, for the
    first request of a connection, from the connection's opening. Twilio sends its requests in
    milliseconds and gives up on an answer after 15 s."""
    max_connections: int = 1000
    """Connections open at once in the process, over all its listeners; more are refused (503)."""
    keep_alive_timeout: int = 5
    """Seconds an idle connection stays open after an answer, waiting for the next request."""

    @classmethod
    def resolve(
        cls,
        read_timeout: float | None = None,
        max_connections: int | None = None,
        keep_alive_timeout: int | None = None,
    ) -> ServerLimits:
        """The values given, else those of the environment variables, else the defaults; ValueError names
        the setting that is out of range."""
        defaults = cls()
        limits = cls(
            read_timeout=_first(read_timeout, _env(READ_TIMEOUT_ENV, float), defaults.read_timeout),
            max_connections=_first(max_connections, _env(MAX_CONNECTIONS_ENV, int), defaults.max_connections),
            keep_alive_timeout=_first(
                keep_alive_timeout, _env(KEEP_ALIVE_TIMEOUT_ENV, int), defaults.keep_alive_timeout
            ),
        )
        if not (math.isfinite(limits.read_timeout) and limits.read_timeout > 0):
            raise ValueError(f"read_timeout ({READ_TIMEOUT_ENV}) must be a number of seconds above 0")
        if limits.max_connections < 1:
            raise ValueError(f"max_connections ({MAX_CONNECTIONS_ENV}) must be at least 1")
        if limits.keep_alive_timeout < 0:
            raise ValueError(f"keep_alive_timeout ({KEEP_ALIVE_TIMEOUT_ENV}) must be 0 or more seconds")
        return limits

    def describe(self) -> str:
        """One line for the start-up log."""
        return (
            f"each request must arrive within {self.read_timeout:g} s, at most {self.max_connections} "
            f"connections at once, idle connections closed after {self.keep_alive_timeout} s"
        )


def _first(given: N | None, from_env: N | None, default: N) -> N:
    return given if given is not None else from_env if from_env is not None else default


def _env(name: str, kind: Callable[[str], N]) -> N | None:
    """The variable as a number of `kind`, or None when it is unset or blank."""
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a number") from None

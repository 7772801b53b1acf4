"""How many connections one served process may hold: the cap, and the file descriptors it needs."""

from __future__ import annotations

import logging
import time

logger = logging.getLogger("twilio_events")

WARNING_INTERVAL = 10.0
"""Seconds between two warnings that the cap refuses connections."""
RESERVED_DESCRIPTORS = 64
"""File descriptors kept for the store, logs and the listening sockets beside client connections."""


class ConnectionCap:
    """Counts the connections open in this process; refuses (and reports) those beyond `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._refused = 0
        self._next_warning = 0.0

    def admit(self, listener: str) -> bool:
        """Take a slot for a new connection; False when all are taken."""
        if self.open < self.limit:
            self.open += 1
            return True
        self._refused += 1
        now = time.monotonic()
        if now >= self._next_warning:
            logger.warning(
                "[%s] connection limit reached: %d connections open (max_connections=%d); refused %d new "
                "connection(s) with 503 since the last warning",
                listener,
                self.open,
                self.limit,
                self._refused,
            )
            self._refused = 0
            self._next_warning = now + WARNING_INTERVAL
        return False

    def release(self) -> None:
        """Give back the slot of a connection that closed (or left HTTP for a WebSocket)."""
        self.open -= 1


def descriptors_for(limit: int) -> int:
    """`limit`, or fewer when the process may not open that many files; raises the soft limit if it can."""
    try:
        import resource
    except ImportError:  # Windows: no such limit to check
        return limit
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = limit + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    if soft != resource.RLIM_INFINITY and soft < needed:
        fitted = max(1, soft - RESERVED_DESCRIPTORS)
        logger.warning(
            "max_connections=%d does not fit the process's %d file descriptors (ulimit -n): serving at most "
            "%d connections",
            limit,
            soft,
            fitted,
        )
        return fitted
    return limit

"""A process's consumer identity: the name it holds events under, stable across restarts, never shared.

The name is `BASE:N`. BASE is the configured `consumer` name, else this machine's host name. N is the
lowest slot whose lock this process could take: a file `BASE:N.lock` in a lock directory of the
machine, locked with `flock` for as long as the process holds the identity. The operating system drops
the lock when the process ends, however it ends (SIGKILL included), so

- two live processes on one machine never share a name: the second takes the next free slot, and
- a process started again after one died takes the slot it left (the lowest free one) and, with it, the
  events still held under that name: the process that held them is certainly gone.

Processes on other machines are told apart by BASE: give each one a `consumer` name of its own where
host names are not unique (containers that share a host name) or not stable (so that a restarted
container does not wait for the leases of its previous life to run out). Without `fcntl` (Windows) the
name is `BASE:pid-PID`: never shared, but never the same twice, so a restart waits for the leases to run out.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import tempfile
from pathlib import Path

MAX_SLOTS = 1000
"""Slots tried before giving up on a stable name (more live processes of one BASE than that)."""

LOCK_DIRECTORY = Path(tempfile.gettempdir()) / "twilio-events-consumers"


class ConsumerIdentity:
    """A consumer name held for this process until `release()`; see the module's docstring."""

    def __init__(self, name: str, lock: int | None) -> None:
        self.name = name
        self._lock = lock

    def __repr__(self) -> str:
        return f"ConsumerIdentity({self.name!r})"

    @classmethod
    def acquire(cls, base: str | None = None, directory: Path = LOCK_DIRECTORY) -> ConsumerIdentity:
        """The lowest free slot of `base` (default: the host name) on this machine, held until released."""
        base = base or socket.gethostname() or "localhost"
        try:
            import fcntl
        except ImportError:  # no flock: unique, not stable
            return cls(f"{base}:pid-{os.getpid()}", None)
        with contextlib.suppress(OSError):
            directory.mkdir(parents=True, exist_ok=True)
            if directory.stat().st_uid == os.geteuid():
                directory.chmod(0o1777)  # every user's processes take their slots here, as in /tmp
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", base)
        for slot in range(1, MAX_SLOTS + 1):
            name = f"{base}:{slot}"
            lock = _open(directory / f"{safe}:{slot}.lock")
            if lock is None:
                continue
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held by a live process
                os.close(lock)
                continue
            return cls(name, lock)
        return cls(f"{base}:pid-{os.getpid()}", None)

    def release(self) -> None:
        """Give the name back (closing the lock file drops the lock)."""
        lock, self._lock = self._lock, None
        if lock is not None:
            os.close(lock)


def _open(path: Path) -> int | None:
    """A descriptor of the lock file, created if missing; None when it cannot be opened at all."""
    flags = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
    except PermissionError:  # another user's file: reading it is enough to lock it
        with contextlib.suppress(OSError):
            return os.open(path, os.O_RDONLY | flags)
    except OSError:
        pass
    return None

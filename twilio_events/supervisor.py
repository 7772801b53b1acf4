"""Several server processes on the same listeners: each socket bound once, here, and inherited by them.

`app.run(processes=N)` and `twilio-events run --workers N` start as a supervisor. It binds the socket of
every listener once, then forks N server processes; each serves every listener on the sockets it
inherited, with an event loop, an app start-up (store, durable workers, consumer name) and a connection
cap of its own, and the kernel hands each new connection to one of the processes waiting on the socket.
This is the design of uvicorn's `--workers` and of gunicorn, chosen over one SO_REUSEPORT socket per
process because

- a port that another program holds fails once, before any process starts, and no other program can
  bind the same port beside the service (SO_REUSEPORT lets any process of the same user join in);
- a process that stops leaves the connections waiting in the queue to the others, where the kernel
  resets those queued on an SO_REUSEPORT socket that closes.

The supervisor closes its own copies of the sockets once the processes are started, so that when they
stop accepting at shut-down, new connections are refused at once instead of queueing for nobody.

Stopping: on SIGTERM or SIGINT the supervisor sends SIGTERM to every process; each stops accepting,
answers what is in flight and lets running handlers finish within its grace; the supervisor returns 0
once all exited cleanly. A process that ends while the service is not stopping (a crash, a kill, a
failed start) is reported, and the whole service stops: the others are stopped the same graceful way
and the supervisor returns 1, so that the process manager (systemd, Kubernetes, ...) restarts the
service as a whole. Nothing is restarted here. On Linux a process whose supervisor is killed outright
gets SIGTERM too. Forking needs a POSIX system (Linux, macOS, BSD).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import NoReturn

from .listener import Listener

logger = logging.getLogger("twilio_events")

BACKLOG = 2048
"""Connections the kernel queues per listening socket, as uvicorn's default."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

ServeOne = Callable[[Sequence[socket.socket]], None]
"""Serves every listener, in this process, on the sockets given (one per listener, in order)."""


def can_fork() -> bool:
    """True where several server processes can be started (a POSIX system)."""
    return hasattr(os, "fork")


def bind(listeners: Sequence[Listener]) -> list[socket.socket]:
    """One listening socket per listener, bound as uvicorn binds (SO_REUSEADDR); OSError when one fails."""
    sockets: list[socket.socket] = []
    try:
        for listener in listeners:
            family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
            sockets.append(
                socket.create_server((listener.host, listener.port), family=family, backlog=BACKLOG)
            )
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def supervise(listeners: Sequence[Listener], processes: int, serve_one: ServeOne) -> int:
    """Serve in `processes` forked processes until SIGTERM/SIGINT; 0 when all stopped cleanly, else 1."""
    if not can_fork():
        logger.error("cannot start %d server processes: this system has no os.fork; serve one", processes)
        return 1
    try:
        sockets = bind(listeners)
    except OSError as exc:
        where = ", ".join(f"{listener.host}:{listener.port}" for listener in listeners)
        logger.error("cannot listen on %s: %s", where, exc.strerror or exc)
        return 1
    return Supervisor(processes).run(sockets, serve_one)


class Supervisor:
    """Forks the server processes, forwards stop signals to them and waits for every one to end."""

    def __init__(self, processes: int) -> None:
        self.processes = processes
        self.children: dict[int, int] = {}
        """pid -> the process's number, 1 to `processes`."""
        self.stopping = False
        self.failed = False

    def run(self, sockets: Sequence[socket.socket], serve_one: ServeOne) -> int:
        """Start the processes, then wait for them; 0 when every one stopped cleanly on request."""
        previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # a child resets the handlers first
        try:
            for signum in STOP_SIGNALS:
                signal.signal(signum, self._on_signal)
            supervisor = os.getpid()
            _flush()  # else what the buffers hold would be written again by every process
            for number in range(1, self.processes + 1):
                pid = os.fork()
                if pid == 0:
                    _child(number, supervisor, sockets, serve_one)
                self.children[pid] = number
        except OSError as exc:
            logger.error("could not start server process %d: %s", len(self.children) + 1, exc)
            self.failed = True
            self._stop()
        finally:
            for sock in sockets:
                sock.close()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        pids = ", ".join(str(pid) for pid in self.children)
        logger.info("%d server processes share the listeners (pids %s)", len(self.children), pids)
        try:
            while self.children:
                pid, status = os.waitpid(-1, 0)  # signal handlers run meanwhile (PEP 475)
                self._ended(pid, os.waitstatus_to_exitcode(status))
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return 1 if self.failed else 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            logger.info(
                "%s: stopping %d server process(es) once their handlers finish",
                signal.Signals(signum).name,
                len(self.children),
            )
        self._stop()

    def _stop(self) -> None:
        """SIGTERM to every process still running (again, when asked again)."""
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _ended(self, pid: int, code: int) -> None:
        number = self.children.pop(pid, None)
        if number is None:  # another child of this process, not a server
            return
        how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code}"
        if self.stopping:
            if code != 0:
                self.failed = True
                logger.error("server process %d (pid %d) %s", number, pid, how)
            return
        self.failed = True
        logger.error(
            "server process %d (pid %d) %s unexpectedly: stopping the service (%d other process(es))",
            number,
            pid,
            how,
            len(self.children),
        )
        self._stop()


def _child(number: int, supervisor: int, sockets: Sequence[socket.socket], serve_one: ServeOne) -> NoReturn:
    """A server process's whole life: serve, then leave without running the supervisor's exit code."""
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _stop_with(supervisor)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        logger.debug("server process %d (pid %d) starting", number, os.getpid())
        serve_one(sockets)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
    except KeyboardInterrupt:
        code = 0
    except BaseException:
        logger.exception("server process %d (pid %d) failed", number, os.getpid())
    finally:
        _flush()
        os._exit(code)


def _flush() -> None:
    """Write out what Python buffers for stdout and stderr."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _stop_with(supervisor: int) -> None:
    """On Linux, ask for SIGTERM when the supervisor dies; elsewhere a killed supervisor leaves us running."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before we asked
        raise SystemExit(1)


SHARED_STORE = (
    "TWILIO_EVENTS_STORE=sqlite:///twilio_events.db (or a redis:// URL), or TwilioEvents(store=...)"
)
"""The settings that give several processes one store."""


def per_process_dedupe(store_durable: bool, processes: int, fix: str = SHARED_STORE) -> str | None:
    """The warning to give when `processes` would each de-duplicate alone (a memory store), else None."""
    if processes < 2 or store_durable:
        return None
    return (
        f"{processes} server processes with the in-memory store: each process de-duplicates only the "
        "callbacks it received itself, so a copy of a callback that reaches another process runs its "
        f"handler again. Share one store: {fix}."
    )

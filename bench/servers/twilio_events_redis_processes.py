"""Rows 9a and 9b, the scaling figure: row 6b's app (durable, Redis) served by 1 or 2 processes on one port.

Usage: python -m bench.servers.twilio_events_redis_processes PORT PROCESSES

Starts one redis-server (as row 6b's), then PROCESSES processes, each serving the app with uvicorn on its
own socket bound with SO_REUSEPORT to the same port: the kernel spreads the connections between them, and
they share the work through Redis as any processes of one app on one store do. The first process stays on
this process's CPU with Redis; a second one goes to the next CPU of the machine. Every process is a child of
this one, so the harness counts all their CPU time.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import tempfile

from twilio_events.stores.redis import RedisStore

from ..payload import HOST
from .common import durable_app
from .redis_server import start_redis, stop


def reuse_port_socket(port: int) -> socket.socket:
    """A listening-ready socket on HOST:port that other processes may bind too (SO_REUSEPORT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((HOST, port))
    return sock


def serve(port: int, url: str, cpu: int | None) -> None:
    """One process: row 6b's app under uvicorn (uvloop, httptools) on its own SO_REUSEPORT socket."""
    import uvicorn

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    app = durable_app(port, RedisStore(url))
    config = uvicorn.Config(
        app, loop="uvloop", http="httptools", log_level="warning", access_log=False, lifespan="on"
    )
    uvicorn.Server(config).run(sockets=[reuse_port_socket(port)])


def cpus_for(processes: int) -> list[int | None]:
    """The first process on this process's CPU, the others on the machine's next CPUs, in turn."""
    own = sorted(os.sched_getaffinity(0))
    others = [cpu for cpu in range(os.cpu_count() or 1) if cpu not in own] or own
    return [None] + [others[i % len(others)] for i in range(processes - 1)]


def _stop_requested(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    if len(sys.argv) != 3 or not sys.argv[1].isdigit() or not sys.argv[2].isdigit():
        raise SystemExit("usage: python -m bench.servers.twilio_events_redis_processes PORT PROCESSES")
    port, processes = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGTERM, _stop_requested)  # the harness stops a row with SIGTERM: stop the children
    with tempfile.TemporaryDirectory(prefix="twilio-events-bench-redis-") as directory:
        redis, url = start_redis(directory)
        context = multiprocessing.get_context("spawn")
        children = [context.Process(target=serve, args=(port, url, cpu)) for cpu in cpus_for(processes)]
        try:
            for child in children:
                child.start()
            for child in children:
                child.join()
        except (KeyboardInterrupt, SystemExit):
            pass
        finally:
            for child in children:
                if child.is_alive():
                    child.terminate()
                child.join(timeout=30)
            stop(redis)


if __name__ == "__main__":
    main()

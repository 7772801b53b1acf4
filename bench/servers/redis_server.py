"""A redis-server for the rows that need one, started by the row's server as its child process.

It listens on a free port of 127.0.0.1 with `appendonly yes` and `appendfsync always` (every write on disk
before Redis answers) and keeps its files in the directory given: it inherits the row's CPU and priority,
and the harness counts its CPU time with the row's.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

from ..payload import HOST

START_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(directory: str) -> tuple[subprocess.Popen[bytes], str]:
    """A redis-server that fsyncs every write, and its URL, once it answers PING."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", HOST, "--dir", directory, "--save", ""]
    command += ["--appendonly", "yes", "--appendfsync", "always"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            with redis.Redis(host=HOST, port=port, socket_timeout=1) as client:
                client.ping()
            return process, f"redis://{HOST}:{port}/0"
        except redis.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                stop(process)
                raise SystemExit(f"redis-server did not start on port {port}") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)

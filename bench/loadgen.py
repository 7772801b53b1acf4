"""The Python load generator, used when wrk is not installed: keep-alive connections over raw
asyncio sockets, each sending the signed callback and waiting for the answer, for a fixed time.

Prints one JSON line shaped like load.lua's (`BENCH_RESULT {...}`). It is slower than wrk: on a
fast row it can be the bottleneck, which run.py reports from this process's own CPU use.

Usage: python -m bench.loadgen --port PORT --body BODY --signature SIG [--connections 32] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from .payload import CONTENT_TYPE, HOST, IDEMPOTENCY_HEADER, PATH, SIGNATURE_HEADER

REQUEST_TIMEOUT_S = 2.0
"""Like wrk's default --timeout: an answer slower than this counts as a timeout error."""


def build_request(port: int, body: bytes, signature: str) -> Callable[[], bytes]:
    """Every call gives the signed request with a new idempotency token, as Twilio sends each webhook."""
    head = (
        f"POST {PATH} HTTP/1.1\r\n"
        f"Host: {HOST}:{port}\r\n"
        f"Content-Type: {CONTENT_TYPE}\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"{SIGNATURE_HEADER}: {signature}\r\n"
    ).encode("latin-1")
    tokens = itertools.count()
    prefix = f"{IDEMPOTENCY_HEADER}: bench-{os.getpid()}-".encode("latin-1")
    return lambda: b"".join((head, prefix, str(next(tokens)).encode(), b"\r\n\r\n", body))


@dataclass
class Tally:
    """What all connections observed."""

    latencies_ns: list[int] = field(default_factory=list)
    non2xx: int = 0
    first_non2xx_status: int = 0
    connect_errors: int = 0
    read_errors: int = 0
    timeouts: int = 0

    def status(self, code: int) -> None:
        if not 200 <= code <= 299:
            self.non2xx += 1
            self.first_non2xx_status = self.first_non2xx_status or code


class ResponseReader(asyncio.Protocol):
    """Reads one HTTP/1.1 response at a time; `response` resolves to (status, server_closes)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.response: asyncio.Future[tuple[int, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not an asyncio.Transport subclass

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bool]]:
        assert self.transport is not None
        self.response = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self.response

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        parsed = _parse_response(self.buffer)
        if parsed is not None and self.response is not None and not self.response.done():
            status, closes, length = parsed
            del self.buffer[:length]
            self.response.set_result((status, closes))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.response is not None and not self.response.done():
            self.response.set_exception(ConnectionError("the server closed the connection"))


def _parse_response(buffer: bytearray) -> tuple[int, bool, int] | None:
    """(status, server closes the connection, total length) once a whole response is buffered."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip().lower()
    body_start = end + 4
    if headers.get("transfer-encoding") == "chunked":
        terminator = buffer.find(b"0\r\n\r\n", body_start)
        if terminator < 0:
            return None
        length = terminator + 5
    else:
        length = body_start + int(headers.get("content-length", "0"))
        if len(buffer) < length:
            return None
    return status, headers.get("connection") == "close", length


async def connection_loop(port: int, request: Callable[[], bytes], deadline: float, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    reader: ResponseReader | None = None
    while time.monotonic() < deadline:
        if reader is None or reader.closed:
            try:
                _, reader = await loop.create_connection(ResponseReader, HOST, port)
            except OSError:
                tally.connect_errors += 1
                await asyncio.sleep(0.01)
                continue
        started = time.perf_counter_ns()
        try:
            status, closes = await asyncio.wait_for(reader.send(request()), REQUEST_TIMEOUT_S)
        except TimeoutError:
            tally.timeouts += 1
            _close(reader)
            reader = None
            continue
        except ConnectionError:
            tally.read_errors += 1
            reader = None
            continue
        tally.latencies_ns.append(time.perf_counter_ns() - started)
        tally.status(status)
        if closes:
            _close(reader)
            reader = None
    if reader is not None:
        _close(reader)


def _close(reader: ResponseReader) -> None:
    if reader.transport is not None:
        reader.transport.close()


def _percentile_us(sorted_ns: list[int], percent: float) -> int:
    if not sorted_ns:
        return 0
    index = min(len(sorted_ns) - 1, int(len(sorted_ns) * percent / 100))
    return sorted_ns[index] // 1000


async def run(port: int, body: bytes, signature: str, connections: int, duration: float) -> dict[str, object]:
    request = build_request(port, body, signature)
    tally = Tally()
    started = time.monotonic()
    deadline = started + duration
    workers = [connection_loop(port, request, deadline, tally) for _ in range(connections)]
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*workers), duration + REQUEST_TIMEOUT_S + 1)
    elapsed = time.monotonic() - started
    latencies = sorted(tally.latencies_ns)
    return {
        "requests": len(latencies),
        "duration_us": int(elapsed * 1e6),
        "non2xx": tally.non2xx,
        "first_non2xx_status": tally.first_non2xx_status,
        "socket_errors": {
            "connect": tally.connect_errors,
            "read": tally.read_errors,
            "write": 0,
            "timeout": tally.timeouts,
        },
        "latency_us": {
            "p50": _percentile_us(latencies, 50),
            "p90": _percentile_us(latencies, 90),
            "p99": _percentile_us(latencies, 99),
            "max": latencies[-1] // 1000 if latencies else 0,
            "mean": sum(latencies) / len(latencies) / 1000 if latencies else 0.0,
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadgen", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--signature", required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        run_loop = asyncio.run
    else:
        run_loop = uvloop.run
    result = run_loop(
        run(args.port, args.body.encode("ascii"), args.signature, args.connections, args.duration)
    )
    print("BENCH_RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()

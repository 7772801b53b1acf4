"""One bounded load run against a server already listening: wrk with load.lua, or bench/loadgen.py.

To drive a server you started yourself (for instance under a profiler):
    python -m bench.load --port PORT [--duration 10] [--connections 32] [--loadgen wrk|python]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from .payload import signed_request

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
RESULT_MARKER = "BENCH_RESULT "
GRACE_S = 30
"""How long past its duration a load generator may take before it is killed."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    duration_s: float
    requests_per_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    first_non2xx_status: int
    socket_errors: dict[str, int]
    loadgen_cpu_s: float
    """CPU time the load generator used: near `duration_s` means it, not the server, was the limit."""

    @property
    def errors(self) -> int:
        """Every failed request: non-2xx answers and socket errors (connect, read, write, timeout)."""
        return self.non2xx + sum(self.socket_errors.values())

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "errors": self.errors}


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def wrk_version() -> str:
    done = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
    first_line = (done.stdout or done.stderr).splitlines()[0]
    return first_line.split(" Copyright")[0].strip()


def priority_prefix(nice: int = 0, realtime: bool = False) -> tuple[str, ...]:
    """What to run a command behind so it gets its priority: `chrt --fifo 10`, `nice -n N`, or nothing."""
    if realtime:
        return ("chrt", "--fifo", "10")
    return ("nice", "-n", str(nice)) if nice else ()


def pinned(command: list[str], cpu: int | None, priority: Sequence[str] = ()) -> list[str]:
    """`command` behind `priority`, restricted to one CPU with taskset unless `cpu` is None."""
    command = [*priority, *command]
    return command if cpu is None else ["taskset", "-c", str(cpu), *command]


def loadgen_command(loadgen: str, port: int, connections: int, duration: int) -> list[str]:
    request = signed_request(port)
    body = request.body.decode("ascii")
    if loadgen == "wrk":
        return [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout=2s",
            "--latency",
            "-s",
            str(BENCH_DIR / "load.lua"),
            request.url,
            "--",
            body,
            request.signature,
            f"run-{time.time_ns()}",  # makes this run's idempotency tokens unique
        ]
    return [
        sys.executable,
        "-m",
        "bench.loadgen",
        f"--port={port}",
        f"--connections={connections}",
        f"--duration={duration}",
        f"--body={body}",
        f"--signature={request.signature}",
    ]


def run_load(
    loadgen: str,
    port: int,
    connections: int,
    duration: int,
    cpu: int | None,
    priority: Sequence[str] = (),
) -> LoadResult:
    """Drive the server on `port` for `duration` seconds; the generator stops by itself."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        pinned(loadgen_command(loadgen, port, connections, duration), cpu, priority),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=duration + GRACE_S,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"{loadgen} failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    raw = json.loads(lines[-1][len(RESULT_MARKER) :])
    latency = raw["latency_us"]
    duration_s = raw["duration_us"] / 1e6
    return LoadResult(
        requests=raw["requests"],
        duration_s=duration_s,
        requests_per_s=raw["requests"] / duration_s if duration_s else 0.0,
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
        non2xx=raw["non2xx"],
        first_non2xx_status=raw["first_non2xx_status"],
        socket_errors={name: int(count) for name, count in raw["socket_errors"].items()},
        loadgen_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.load", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen", choices=["wrk", "python"], default=None)
    parser.add_argument("--cpu", type=int, default=None, help="pin the load generator to this CPU")
    args = parser.parse_args()
    loadgen = args.loadgen or ("wrk" if wrk_available() else "python")
    try:
        result = run_load(loadgen, args.port, args.connections, args.duration, args.cpu)
    except RuntimeError as failed:
        raise SystemExit(str(failed)) from None
    print(json.dumps(result.as_dict(), indent=2))


if __name__ == "__main__":
    main()

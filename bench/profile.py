"""Where one row's server spends its time: run it under py-spy while load.py drives it, then print
the functions with the most samples (inclusive and own time).

Needs py-spy in the virtualenv (`.venv/bin/pip install py-spy`); it is not a dependency.

Usage: python -m bench.profile [--row twilio_events_async] [--duration 15] [--rate 200] [--top 30]
The raw samples (collapsed stacks, for flamegraph tools) are kept in bench/results/<row>.collapsed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from .load import ROOT, run_load, wrk_available
from .rows import ROWS
from .run import RESULTS_DIR, free_port
from .verify import CheckFailed, wait_until_serving

SERVER_CPU = 0
LOAD_CPU = 1


def frame_name(frame: str) -> str:
    """`function (file.py)` from py-spy's `function (path/to/file.py:line)`."""
    function, _, where = frame.partition(" (")
    if not where:
        return frame or "<unknown>"
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})"


def summarize(collapsed: Path, top: int) -> list[str]:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        # py-spy --subprocesses puts the process first: not a function.
        frames = [frame_name(frame) for frame in stack.split(";") if not frame.startswith("process ")]
        if not frames:
            continue
        samples = int(count)
        total += samples
        for name in set(frames):
            inclusive[name] += samples
        own[frames[-1]] += samples
    if not total:
        return ["no samples"]
    lines = [f"{total} samples while busy", "", "inclusive (the function and what it calls):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)]
    lines += ["", "own time (the function itself):"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--row", default="twilio_events_async", choices=[row.key for row in ROWS])
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--rate", type=int, default=200, help="samples per second")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every thread, not only the one holding the GIL (idle pool threads then show up)",
    )
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="do not pause the server to sample: less slowdown, some stacks cut short",
    )
    args = parser.parse_args()

    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install py-spy")
    row = next(row for row in ROWS if row.key == args.row)
    if (reason := row.unavailable()) is not None:
        raise SystemExit(f"row {row.key}: {reason}")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    collapsed = RESULTS_DIR / f"{row.key}.collapsed"
    port = free_port()
    # py-spy samples from the load generator's CPU; the server alone has the other one.
    command = ["taskset", "-c", str(LOAD_CPU), py_spy, "record", "--format=raw", f"--rate={args.rate}"]
    command += ["--subprocesses", f"--output={collapsed}"]
    command += [] if args.all_threads else ["--gil"]
    command += ["--nonblocking"] if args.nonblocking else []
    command += ["--", "taskset", "-c", str(SERVER_CPU)]
    spy = subprocess.Popen(command + row.command(port), cwd=ROOT, stdout=subprocess.DEVNULL)
    try:
        wait_until_serving(spy, port)
        loadgen = "wrk" if wrk_available() else "python"
        result = run_load(loadgen, port, args.connections, args.duration, LOAD_CPU)
        print(
            f"{row.label} under py-spy: {result.requests_per_s:,.0f} req/s, p99 {result.p99_ms:.2f} ms, "
            f"{result.errors} errors (sampling slows it down: compare with bench.run, not across tools)"
        )
    except CheckFailed as failed:
        raise SystemExit(str(failed)) from None
    finally:
        os.kill(spy.pid, signal.SIGINT)  # py-spy writes its samples and stops the server
        try:
            spy.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spy.kill()
            spy.wait()
        time.sleep(0.2)
    print("\n".join(summarize(collapsed, args.top)))
    print(f"\ncollapsed stacks: {collapsed.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

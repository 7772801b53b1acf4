"""Memory per remembered callback of the inline default store (MemoryStore), old structure and new.

Each measurement runs in a fresh interpreter: it notes its RSS, passes `--count` distinct call status
callbacks through the store as inline delivery does (last_status, is_handled, advance_status,
mark_handled: a key and a status mark remembered per callback), and divides the RSS growth by the count.

Usage: python -m bench.memory [--count 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

from .load import ROOT
from .procstats import _status_kib

DEFAULT_COUNT = 200_000
"""The default cap of MemoryStore: the most each of its two tables keeps."""
STRUCTURES = {
    "old": ("bench.servers.legacy_memory", "LegacyMemoryStore"),
    "new": ("twilio_events.stores.memory", "MemoryStore"),
}


@dataclass(frozen=True, slots=True)
class MemoryResult:
    structure: str
    count: int
    rss_growth_bytes: int
    bytes_per_callback: float
    us_per_callback: float
    """CPU time of the four store calls per callback, for a sense of what the structure costs."""


async def _remember(store: Any, count: int) -> None:
    from twilio_events.stores import StatusMark

    for n in range(count):
        sid = f"CA{n:032x}"
        key = f"call:{sid}:completed:{n % 7}"
        await store.last_status(sid)
        if not await store.is_handled(key):
            await store.advance_status(sid, StatusMark("completed", (5, n % 7), final=True), 86_400.0)
            await store.mark_handled(key, 86_400.0)


def measure_here(structure: str, count: int) -> MemoryResult:
    """Run in this process: the RSS growth of one store remembering `count` distinct callbacks."""
    module, name = STRUCTURES[structure]
    store = getattr(__import__(module, fromlist=[name]), name)()
    asyncio.run(_remember(store, 1000))  # the event loop, the imports and the interned statuses
    store = getattr(__import__(module, fromlist=[name]), name)()
    gc.collect()
    before = _status_kib_self()
    started = time.process_time()
    asyncio.run(_remember(store, count))
    cpu = time.process_time() - started
    gc.collect()
    growth = (_status_kib_self() - before) * 1024
    return MemoryResult(structure, count, growth, growth / count, cpu * 1e6 / count)


def _status_kib_self() -> int:
    import os

    return _status_kib(os.getpid(), "VmRSS")


def measure(structure: str, count: int = DEFAULT_COUNT) -> MemoryResult:
    """Measure one structure in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--structure", structure, "--count", str(count), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return MemoryResult(**json.loads(done.stdout.splitlines()[-1]))


def lines(results: list[MemoryResult]) -> list[str]:
    """The report: bytes and CPU per remembered callback, old and new side by side."""
    out = [
        f"memory per remembered callback (inline default store, {results[0].count:,} distinct callbacks, "
        "RSS growth / count):"
    ]
    for result in results:
        at_cap = result.bytes_per_callback * DEFAULT_COUNT / 2**20
        out.append(
            f"  {result.structure:>3} structure: {result.bytes_per_callback:6.0f} bytes/callback "
            f"(~{at_cap:.0f} MiB at the {DEFAULT_COUNT:,} cap), {result.us_per_callback:.1f} µs CPU/callback"
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__)
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT)
    parser.add_argument("--structure", choices=sorted(STRUCTURES), help="measure one, in this process")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = parser.parse_args()
    if args.structure:
        result = measure_here(args.structure, args.count)
        print(json.dumps(asdict(result)) if args.json else "\n".join(lines([result])))
        return 0
    print("\n".join(lines([measure(name, args.count) for name in STRUCTURES])))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmark: start every row's server in its own process pinned to one CPU, check that it
accepts the signed callback and refuses forged ones, then drive it from the other CPU.

All servers stay up for the whole run and the rounds interleave the rows (row 1..6b, row 1..6b, ...),
so slow drifts of a noisy machine hit every row alike and the ratios hold. After each run of a durable
row, the harness waits until its workers have handled every accepted event (see bench/README.md).

Usage: python -m bench.run [--duration 5] [--runs 3] [--warmup 2] [--connections 32]
                           [--rows raw_asgi,twilio_events_async] [--loadgen auto|wrk|python]
                           [--nice -10 | --realtime]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from . import memory, report
from .load import ROOT, pinned, priority_prefix, run_load, wrk_available, wrk_version
from .machine import import_cost, machine_info, source_revision
from .payload import BODY, HOST, PARAMS
from .procstats import cpu_busy_seconds, serving_memory, tree_cpu_seconds, tree_cpu_seconds_pinned_to
from .results import Measurement, RowResult
from .rows import ROWS, SUBJECT, Row
from .verify import CheckFailed, check_server, wait_until_drained, wait_until_serving

RESULTS_DIR = ROOT / "bench" / "results"
MEMORY_FILESYSTEMS = ("tmpfs", "ramfs")
DRAIN_TIMEOUT_S = 120
"""How long a durable row's workers may take to handle what a run left queued before the row is aborted."""
DEFAULT_NICE = -10 if os.geteuid() == 0 else 0


@dataclass(frozen=True, slots=True)
class Settings:
    duration: int
    runs: int
    warmup: int
    connections: int
    loadgen: str
    """"wrk" or "python"."""
    loadgen_name: str
    server_cpu: int | None
    load_cpu: int | None
    nice: int
    """Niceness of the servers and the load generator (negative: ahead of other work on the machine)."""
    realtime: bool
    """Run them under SCHED_FIFO instead (chrt): steadier req/s on a busy machine, see --help."""

    @property
    def priority(self) -> tuple[str, ...]:
        return priority_prefix(self.nice, self.realtime)

    @property
    def priority_label(self) -> str:
        return "SCHED_FIFO 10 (chrt)" if self.realtime else f"nice {self.nice}"

    def as_dict(self) -> dict[str, object]:
        return {
            "duration_s": self.duration,
            "runs": self.runs,
            "warmup_s": self.warmup,
            "connections": self.connections,
            "loadgen": self.loadgen_name,
            "server_cpu": self.server_cpu,
            "load_cpu": self.load_cpu,
            "priority": self.priority_label,
            "payload_fields": len(PARAMS),
            "payload_bytes": len(BODY),
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=5, help="seconds per measured run (default 5)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per row; the median is shown")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per row (0: none)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--rows", help="comma-separated row keys (default: all): " + ", ".join(r.key for r in ROWS)
    )
    parser.add_argument("--loadgen", choices=["auto", "wrk", "python"], default="auto")
    parser.add_argument("--server-cpu", type=int, help="CPU the servers are pinned to (default: the first)")
    parser.add_argument(
        "--load-cpu", type=int, help="CPU the load generator is pinned to (default: the second)"
    )
    parser.add_argument(
        "--nice",
        type=int,
        default=DEFAULT_NICE,
        help="niceness of the servers and the load generator, so that other work on the machine disturbs "
        f"them less (default {DEFAULT_NICE}: -10 as root, else 0)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="run servers and load generator under SCHED_FIFO (chrt, as root): req/s stays steady when "
        "other work keeps the machine busy, but latency then includes the pauses (up to 50 ms a second) "
        "the kernel still gives that work",
    )
    parser.add_argument(
        "--memory-count",
        type=int,
        default=memory.DEFAULT_COUNT,
        help="distinct callbacks the memory figure remembers, old store structure and new (0: skip it)",
    )
    parser.add_argument("--output", type=Path, help="the JSON file (default: bench/results/<timestamp>.json)")
    return parser.parse_args()


def settings_from(args: argparse.Namespace) -> Settings:
    server_cpu, load_cpu = choose_cpus(args.server_cpu, args.load_cpu)
    loadgen = choose_loadgen(args.loadgen)
    return Settings(
        duration=args.duration,
        runs=args.runs,
        warmup=args.warmup,
        connections=args.connections,
        loadgen=loadgen,
        loadgen_name=wrk_version() if loadgen == "wrk" else "bench/loadgen.py (Python, asyncio)",
        server_cpu=server_cpu,
        load_cpu=load_cpu,
        nice=args.nice,
        realtime=args.realtime,
    )


def choose_cpus(server: int | None, load: int | None) -> tuple[int | None, int | None]:
    """One CPU for the servers and another for the load generator, or no pinning at all."""
    usable = sorted(os.sched_getaffinity(0))
    if len(usable) < 2 or shutil.which("taskset") is None:
        print("warning: fewer than 2 usable CPUs or no taskset: nothing is pinned, figures will be noisy")
        return None, None
    server = usable[0] if server is None else server
    load = next(c for c in usable if c != server) if load is None else load
    return server, load


def choose_loadgen(requested: str) -> str:
    if requested == "wrk" and not wrk_available():
        raise SystemExit("--loadgen wrk: wrk is not installed (apt-get install wrk)")
    if requested == "auto":
        if wrk_available():
            return "wrk"
        print(
            "wrk is not installed: using the Python load generator (bench/loadgen.py); it needs more CPU "
            "per request than wrk, so the fastest rows may be limited by it (see the notes)."
        )
        return "python"
    return requested


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One row's server process, its output kept in a log file."""

    def __init__(self, row: Row, settings: Settings, log_dir: Path) -> None:
        self.row = row
        self.port = free_port()
        self.log = log_dir / f"{row.key}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                pinned(row.command(self.port), settings.server_cpu, settings.priority),
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)  # its own session: the server and its workers
                self.process.wait(timeout=10)


@contextlib.contextmanager
def servers_for(results: list[RowResult], settings: Settings) -> Iterator[dict[str, Server]]:
    """Start, then always stop, the server of each row that can run."""
    with tempfile.TemporaryDirectory(prefix="twilio-events-bench-") as log_dir:
        started: dict[str, Server] = {}
        try:
            for result in results:
                if result.skipped is None:
                    started[result.row.key] = Server(result.row, settings, Path(log_dir))
            yield started
        finally:
            for server in started.values():
                server.stop()


def prepare(result: RowResult, server: Server) -> None:
    """Wait for the server, note its idle memory, and check it accepts and refuses as it must."""
    result.port = server.port
    try:
        wait_until_serving(server.process, server.port)
        result.idle_rss_mib = serving_memory(server.pid).rss_mib
        result.checks = check_server(server.port, result.row.validates_signature)
        if result.row.durable:
            wait_until_drained(server.port, DRAIN_TIMEOUT_S)
            result.checks.append("its workers handled the accepted callbacks (GET /health)")
    except CheckFailed as failed:
        result.skipped = f"aborted: {failed}"
        print(f"  row {result.row.number} {result.row.label}: {failed}\n{server.log_tail()}")
        return
    print(f"  row {result.row.number} {result.row.label} on port {server.port}: " + "; ".join(result.checks))


def busy_seconds(settings: Settings) -> tuple[float, float] | None:
    """How long the server's and the load generator's CPUs have been busy, when both are pinned."""
    if settings.server_cpu is None or settings.load_cpu is None:
        return None
    return cpu_busy_seconds(settings.server_cpu), cpu_busy_seconds(settings.load_cpu)


def server_cpu_on_load_cpu(server: Server, settings: Settings) -> float:
    """CPU time of the server's processes placed on the load generator's CPU (row 9b's second process),
    so that it is not counted as other work there."""
    return tree_cpu_seconds_pinned_to(server.pid, settings.load_cpu) if settings.load_cpu is not None else 0.0


def measure(result: RowResult, server: Server, settings: Settings, seconds: int) -> Measurement | None:
    """One load run (for a durable row, then the drain of what it left queued); a failed generator,
    a dead server or a backlog that is not handled aborts the row."""
    before = tree_cpu_seconds(server.pid)
    on_load_cpu_before = server_cpu_on_load_cpu(server, settings)
    busy_before = busy_seconds(settings)
    try:
        load = run_load(
            settings.loadgen, server.port, settings.connections, seconds, settings.load_cpu, settings.priority
        )
    except (RuntimeError, subprocess.TimeoutExpired) as failed:
        result.skipped = f"aborted: {failed}"
        return None
    backlog, drain_s = 0, 0.0
    if result.row.durable:
        try:
            backlog, drain_s = wait_until_drained(server.port, DRAIN_TIMEOUT_S)
        except CheckFailed as failed:
            result.skipped = f"aborted: {failed}"
            return None
    used = tree_cpu_seconds(server.pid) - before
    on_load_cpu = server_cpu_on_load_cpu(server, settings) - on_load_cpu_before
    busy_after = busy_seconds(settings)
    other = other_load = None
    if busy_before and busy_after:
        other = busy_after[0] - busy_before[0] - (used - on_load_cpu)
        other_load = busy_after[1] - busy_before[1] - load.loadgen_cpu_s - on_load_cpu
    if server.process.poll() is not None:
        result.skipped = f"aborted: the server exited with code {server.process.returncode}"
        print(server.log_tail())
        return None
    return Measurement(
        load=load,
        server_cpu_s=used,
        other_cpu_s=other,
        other_load_cpu_s=other_load,
        backlog=backlog,
        drain_s=drain_s,
    )


def measure_rows(results: list[RowResult], settings: Settings) -> None:
    """Start and check every server, warm each up, then measure them in interleaved rounds."""
    print("starting and checking the servers:")
    with servers_for(results, settings) as servers:
        for result in results:
            if result.row.key in servers:
                prepare(result, servers[result.row.key])
        live = [result for result in results if result.skipped is None]
        if settings.warmup:
            print(f"warming up ({settings.warmup} s per row)")
            for result in live:
                result.warmup = measure(result, servers[result.row.key], settings, settings.warmup)
        for round_number in range(1, settings.runs + 1):
            for result in live:
                if result.skipped is not None:
                    continue
                run = measure(result, servers[result.row.key], settings, settings.duration)
                if run is None:
                    print(f"  row {result.row.number}: {result.skipped}")
                    continue
                result.runs.append(run)
                print(progress_line(round_number, settings.runs, result.row, run), flush=True)
        for result in live:
            if result.skipped is None:
                result.peak_rss_mib = serving_memory(servers[result.row.key].pid).peak_rss_mib


def progress_line(round_number: int, runs: int, row: Row, run: Measurement) -> str:
    line = (
        f"  run {round_number}/{runs}  row {row.number:<2} {row.label:<40} "
        f"{run.load.requests_per_s:>8,.0f} req/s  p99 {run.load.p99_ms:6.2f} ms  "
        f"{run.cpu_us_per_request:4.0f} µs/req  errors {run.load.errors}"
    )
    if run.backlog:
        line += f"  handled {run.handled_per_s:,.0f}/s ({run.backlog:,} left, {run.drain_s:.1f} s to drain)"
    if max(run.other_cpu_share, run.other_load_cpu_share) >= report.OTHER_LOAD:
        line += (
            f"  (other processes took {run.other_cpu_share:.0%} of the server's CPU, "
            f"{run.other_load_cpu_share:.0%} of the load generator's)"
        )
    return line


def select_rows(keys: str | None) -> list[RowResult]:
    wanted = set(keys.split(",")) if keys else {row.key for row in ROWS}
    unknown = wanted - {row.key for row in ROWS}
    if unknown:
        raise SystemExit(f"unknown rows: {', '.join(sorted(unknown))}")
    return [RowResult(row, skipped=row.unavailable()) for row in ROWS if row.key in wanted]


def print_header(settings: Settings, machine: dict[str, object], imports: dict[str, object]) -> None:
    print(
        f"machine: {machine['nproc']} CPUs, {machine['cpu_model']}, Python {machine['python']}; "
        f"servers on CPU {settings.server_cpu}, load generator on CPU {settings.load_cpu}, "
        f"both at {settings.priority_label}; load generator: {settings.loadgen_name}"
    )
    print(
        f"payload: a signed voice status callback, {len(PARAMS)} fields, {len(BODY)} bytes; "
        f"{settings.connections} connections, {settings.runs} x {settings.duration} s per row "
        f"after {settings.warmup} s of warm-up"
    )
    print(
        f"import twilio_events: {imports['import_twilio_events_ms']:.0f} ms "
        f"(python -c 'import twilio_events': {imports['python_c_import_ms']:.0f} ms, "
        f"bare interpreter: {imports['python_startup_ms']:.0f} ms); heavy modules loaded: "
        f"{imports['heavy_modules_loaded'] or 'none'}"
    )


def print_report(
    results: list[RowResult],
    targets: list[report.Target],
    notes: list[str],
    remembered: list[memory.MemoryResult],
) -> None:
    subject = next((r for r in results if r.row.key == SUBJECT), None)
    print()
    print("\n".join(report.table(results)))
    print()
    print("\n".join(report.ratio_lines(results)))
    print()
    print("\n".join(report.cpu_lines(results)))
    if scaling := report.scaling_lines(results):
        print("\n".join(scaling))
    if remembered:
        print("\n".join(memory.lines(remembered)))
    print("targets:")
    print("\n".join("  " + line for line in report.target_lines(targets)))
    if subject and subject.idle_rss_mib is not None:
        print(f"idle twilio_events app process: {subject.idle_rss_mib:.1f} MiB RSS")
    if notes:
        print("notes:")
        print("\n".join("  " + note for note in notes))


def main() -> int:
    args = parse_args()
    started = time.monotonic()
    started_at = datetime.now().astimezone()
    settings = settings_from(args)
    machine = machine_info()
    if settings.load_cpu is not None:
        os.sched_setaffinity(0, {settings.load_cpu})  # this process too stays off the servers' CPU
    revision = source_revision(ROOT)
    imports = import_cost()
    print_header(settings, machine, imports)
    if revision["commit"]:
        modified = " plus uncommitted changes to twilio_events/" if revision["twilio_events_modified"] else ""
        print(f"measuring commit {revision['commit']}{modified}")

    results = select_rows(args.rows)
    measure_rows(results, settings)

    remembered = []
    if args.memory_count:
        print(f"measuring memory per remembered callback ({args.memory_count:,} distinct callbacks)")
        remembered = [memory.measure(name, args.memory_count) for name in memory.STRUCTURES]
    new_memory = next((m.bytes_per_callback for m in remembered if m.structure == "new"), None)

    elapsed = time.monotonic() - started
    targets = report.targets(results, settings.connections, new_memory)
    notes = report.notes(results)
    if machine["tempdir_filesystem"] in MEMORY_FILESYSTEMS and any(
        r.measured and r.row.durable for r in results
    ):
        notes.append(
            f"the durable rows' files are on {machine['tempdir_filesystem']} ({tempfile.gettempdir()}): "
            "fsync costs nothing there, unlike on a disk. Set TMPDIR to a directory on a disk."
        )
    if settings.realtime:
        notes.append("--realtime: latencies include the pauses the kernel gives other work (up to 50 ms/s).")
    print_report(results, targets, notes, remembered)

    subject = next((r for r in results if r.row.key == SUBJECT), None)
    document = {
        "started_at": started_at.isoformat(timespec="seconds"),
        "elapsed_s": round(elapsed, 1),
        "machine": machine,
        "source": revision,
        "settings": settings.as_dict(),
        "import": imports,
        "idle_rss_twilio_events_mib": subject.idle_rss_mib if subject else None,
        "rows": {result.row.key: result.as_dict() for result in results},
        "ratios": report.ratios(results),
        "cpu_ratios": report.cpu_ratios(results),
        "durable_ratios": report.durable_ratios(results),
        "celery_ratio_handled": report.handled_ratio(results, "twilio_events_durable_redis", "celery_redis"),
        "scaling": report.scaling_lines(results),
        "memory_per_remembered_callback": [asdict(m) for m in remembered],
        "targets": [target.as_dict() for target in targets],
        "notes": notes,
        "table_markdown": report.table(results),
    }
    output = args.output or RESULTS_DIR / f"{started_at:%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    print(f"results: {shown}; took {elapsed:.0f} s")

    failed = [r for r in results if (r.skipped or "").startswith("aborted") or r.errors]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

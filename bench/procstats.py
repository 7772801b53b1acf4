"""What /proc says about a server: CPU time and memory of its process tree (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (gunicorn: master and worker)."""
    tree = [pid]
    for parent in tree:
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                tree.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads) so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The fields after the command name, which is in parentheses and may contain spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLOCK_TICKS


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants so far."""
    return sum(cpu_seconds(p) for p in process_tree(pid))


def tree_cpu_seconds_pinned_to(pid: int, cpu: int) -> float:
    """User + system CPU time of the processes of `pid`'s tree that may run only on CPU `cpu`."""
    total = 0.0
    for process in process_tree(pid):
        try:
            if os.sched_getaffinity(process) == {cpu}:
                total += cpu_seconds(process)
        except OSError:
            continue
    return total


def _status_kib(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True, slots=True)
class Memory:
    """Resident memory of the serving process: the largest one in the tree, in MiB."""

    rss_mib: float
    """VmRSS now."""
    peak_rss_mib: float
    """VmHWM: the highest RSS since the process started."""


def serving_memory(pid: int) -> Memory:
    """Memory of the largest process in the tree: the one that serves (gunicorn: its worker)."""
    tree = process_tree(pid)
    rss = max(_status_kib(p, "VmRSS") for p in tree)
    peak = max(_status_kib(p, "VmHWM") for p in tree)
    return Memory(rss_mib=rss / 1024, peak_rss_mib=peak / 1024)


def cpu_busy_seconds(cpu: int) -> float:
    """Time CPU `cpu` has spent running processes (user, nice, system) since boot, all processes."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{cpu} "):
            user, nice, system = (int(value) for value in line.split()[1:4])
            return (user + nice + system) / CLOCK_TICKS
    return 0.0

"""The machine a run happened on, and what importing twilio_events costs."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "twilio-events",
    "redis",
    "twilio",
    "starlette",
    "python-multipart",
    "uvicorn",
    "uvloop",
    "httptools",
    "flask",
    "werkzeug",
    "gunicorn",
)
HEAVY_MODULES = ("twilio.rest", "twilio.http", "twilio.base.client_base", "requests", "aiohttp", "httpx2")
"""Modules a webhook never needs: importing twilio_events should not load them."""


def machine_info() -> dict[str, object]:
    return {
        "nproc": os.cpu_count(),
        "usable_cpus": sorted(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": {name: _version(name) for name in PACKAGES},
        "tempdir_filesystem": filesystem(tempfile.gettempdir()),
    }


def filesystem(path: str) -> str:
    """The type of the file system `path` is on (ext4, tmpfs, ...), from /proc/mounts, or "unknown"."""
    target = os.path.realpath(path)
    found, length = "unknown", -1
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return found
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        point = fields[1].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) > length:
            found, length = fields[2], len(point)
    return found


def source_revision(root: Path) -> dict[str, object]:
    """The commit measured, and whether twilio_events/ had uncommitted changes (None without git)."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changes = subprocess.run(
            ["git", "status", "--porcelain", "--", "twilio_events"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "twilio_events_modified": None}
    return {"commit": commit, "twilio_events_modified": bool(changes)}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def import_cost(repeat: int = 7) -> dict[str, object]:
    """`python -c "import twilio_events"` against `python -c "pass"`, fresh processes, medians."""
    bare = [_wall_time_s(["-c", "pass"]) for _ in range(repeat)]
    full = [_wall_time_s(["-c", "import twilio_events"]) for _ in range(repeat)]
    self_reported = [_importtime_us() for _ in range(repeat)]
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", "import json, sys, twilio_events; print(json.dumps(sorted(sys.modules)))"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return {
        "python_startup_ms": statistics.median(bare) * 1000,
        "python_c_import_ms": statistics.median(full) * 1000,
        "import_twilio_events_ms": statistics.median(self_reported) / 1000,
        "modules_loaded": len(loaded),
        "heavy_modules_loaded": [m for m in HEAVY_MODULES if m in loaded],
        "import_ms_by_package": _import_time_by_package(),
    }


def _wall_time_s(args: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], check=True)
    return time.perf_counter() - started


def _importtime_lines(code: str) -> list[tuple[int, int, int, str]]:
    """(self µs, cumulative µs, nesting depth, module) for each line of `python -X importtime`."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    lines = []
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, cumulative, name = line[len("import time:") :].split("|")
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        lines.append((int(own), int(cumulative), depth, name.strip()))
    return lines


def _importtime_us() -> int:
    """The cumulative import time of twilio_events, as the interpreter measures it."""
    for _, cumulative, depth, name in _importtime_lines("import twilio_events"):
        if depth == 0 and name == "twilio_events":
            return cumulative
    raise RuntimeError("python -X importtime did not report twilio_events")


def _import_time_by_package(count: int = 8) -> dict[str, float]:
    """Where `import twilio_events` spends its time: each module's own time, summed by top-level
    package (stdlib included), largest first, in ms; modules loaded at interpreter start-up excluded."""
    startup = {name for *_, name in _importtime_lines("pass")}
    costs: dict[str, float] = {}
    for own, _, _, name in _importtime_lines("import twilio_events"):
        if name not in startup:
            top = name.split(".")[0]
            costs[top] = costs.get(top, 0.0) + own / 1000
    return dict(sorted(costs.items(), key=lambda item: -item[1])[:count])

"""The rows of the benchmark: which server each one starts, and when a row cannot run.

To add a row, write its server in bench/servers/ (it takes the port as its only argument, listens
on 127.0.0.1 and validates with payload.AUTH_TOKEN) and add a `Row` to `ROWS`.
"""

from __future__ import annotations

import importlib.util
import inspect
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .payload import HOST

Command = Callable[[int], list[str]]


@dataclass(frozen=True, slots=True)
class Row:
    number: str
    key: str
    """Names the row in the JSON and in `--rows`."""
    label: str
    command: Command
    """The command line that serves the webhook on the given port, in the foreground."""
    validates_signature: bool = True
    """False only for the raw floor: the harness then checks acceptance only, not refusal."""
    unavailable: Callable[[], str | None] = lambda: None
    """Why the row cannot run here (shown in its place in the table), or None."""
    durable: bool = False
    """The server acknowledges before the handler runs: after each run, the harness waits until its
    workers have handled every accepted event (GET /health), and counts that time and CPU too."""


def python_module(module: str) -> Command:
    """`python -m MODULE PORT` with this interpreter."""
    return lambda port: [sys.executable, "-m", module, str(port)]


def gunicorn_sync(app: str) -> Command:
    """gunicorn with one sync worker, as Flask apps are commonly deployed."""
    return lambda port: [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers=1",
        "--worker-class=sync",
        f"--bind={HOST}:{port}",
        "--log-level=warning",
        app,
    ]


def durable_row_unavailable(module: str, *, redis: bool = False) -> Callable[[], str | None]:
    """Durable rows need `TwilioEvents(delivery=...)` and a server module for the backend; the Redis
    row also needs the redis package and a redis-server binary (its server starts its own)."""

    def unavailable() -> str | None:
        from twilio_events import TwilioEvents

        if "delivery" not in inspect.signature(TwilioEvents).parameters:
            return "n/a (durable mode not available)"
        if importlib.util.find_spec(module) is None:
            return f"n/a (no server module {module} yet)"
        if redis and importlib.util.find_spec("redis") is None:
            return "n/a (the redis package is not installed: pip install 'twilio-events[redis]')"
        if redis and shutil.which("redis-server") is None:
            return "n/a (redis-server is not installed: apt-get install redis-server)"
        return None

    return unavailable


def celery_row_unavailable() -> str | None:
    """The Celery row needs celery (the `bench` extra), the redis package and a redis-server binary."""
    if importlib.util.find_spec("celery") is None:
        return "n/a (celery is not installed: pip install -e '.[bench]')"
    if importlib.util.find_spec("redis") is None:
        return "n/a (the redis package is not installed: pip install 'twilio-events[redis]')"
    if shutil.which("redis-server") is None:
        return "n/a (redis-server is not installed: apt-get install redis-server)"
    return None


SQLITE_MODULE = "bench.servers.twilio_events_sqlite"
REDIS_MODULE = "bench.servers.twilio_events_redis"
PROCESSES_MODULE = "bench.servers.twilio_events_redis_processes"


def processes_command(processes: int) -> Command:
    """Row 6b's app served by `processes` processes on one port (SO_REUSEPORT), sharing one Redis."""
    return lambda port: [sys.executable, "-m", PROCESSES_MODULE, str(port), str(processes)]


ROWS: tuple[Row, ...] = (
    Row(
        number="1",
        key="raw_asgi",
        label="raw ASGI on uvicorn (floor)",
        command=python_module("bench.servers.raw_asgi"),
        validates_signature=False,
    ),
    Row(
        number="2",
        key="starlette_route",
        label="Starlette route + RequestValidator",
        command=python_module("bench.servers.starlette_route"),
    ),
    Row(
        number="3",
        key="flask_gunicorn",
        label="Flask + RequestValidator, gunicorn sync",
        command=gunicorn_sync("bench.servers.flask_app:app"),
    ),
    Row(
        number="4",
        key="twilio_events_async",
        label="twilio_events inline, async handler",
        command=python_module("bench.servers.twilio_events_async"),
    ),
    Row(
        number="5",
        key="twilio_events_sync",
        label="twilio_events inline, sync handler",
        command=python_module("bench.servers.twilio_events_sync"),
    ),
    Row(
        number="6a",
        key="twilio_events_durable_sqlite",
        label="twilio_events durable, SQLite",
        command=python_module(SQLITE_MODULE),
        unavailable=durable_row_unavailable(SQLITE_MODULE),
        durable=True,
    ),
    Row(
        number="6b",
        key="twilio_events_durable_redis",
        label="twilio_events durable, Redis",
        command=python_module(REDIS_MODULE),
        unavailable=durable_row_unavailable(REDIS_MODULE, redis=True),
        durable=True,
    ),
    Row(
        number="7",
        key="twilio_events_metrics",
        label="twilio_events inline, async, metrics on",
        command=python_module("bench.servers.twilio_events_metrics"),
        unavailable=lambda: (
            None
            if importlib.util.find_spec("prometheus_client")
            else "n/a (pip install 'twilio-events[prometheus]')"
        ),
    ),
    Row(
        number="8",
        key="celery_redis",
        label="Starlette + RequestValidator + Celery task",
        command=python_module("bench.servers.celery_route"),
        unavailable=celery_row_unavailable,
        durable=True,
    ),
    Row(
        number="9a",
        key="twilio_events_durable_redis_1p",
        label="twilio_events durable, Redis, 1 process",
        command=processes_command(1),
        unavailable=durable_row_unavailable(PROCESSES_MODULE, redis=True),
        durable=True,
    ),
    Row(
        number="9b",
        key="twilio_events_durable_redis_2p",
        label="twilio_events durable, Redis, 2 processes",
        command=processes_command(2),
        unavailable=durable_row_unavailable(PROCESSES_MODULE, redis=True),
        durable=True,
    ),
)

SUBJECT = "twilio_events_async"
"""The row the ratios are about."""
BASELINES = ("raw_asgi", "starlette_route", "flask_gunicorn")
"""The rows it is compared with."""
DURABLE = ("twilio_events_durable_sqlite", "twilio_events_durable_redis")
"""The durable rows, compared with the subject (inline delivery)."""
METRICS = "twilio_events_metrics"
"""Row 4 with metrics on: its CPU per request is compared with row 4's."""
METRICS_GOAL = 1.10
CELERY = "celery_redis"
"""What a user builds for durable work without twilio_events, compared with row 6b."""
SCALING = ("twilio_events_durable_redis_1p", "twilio_events_durable_redis_2p")
"""Row 6b's app in 1 and in 2 processes against one Redis: the scaling figure."""

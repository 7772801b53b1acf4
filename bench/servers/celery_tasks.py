"""The Celery side of row 8: the app (Redis broker from CELERY_BROKER_URL) and the task a callback becomes.

The worker counts the tasks it has run in a memory-mapped file (BENCH_CELERY_COUNTER), so that the server
can say how many accepted callbacks are still to handle without another write to Redis per task.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable

from celery import Celery

COUNTER = struct.Struct("<Q")

app = Celery("bench_celery", broker=os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_acks_late=True,  # the message leaves Redis once the task has run, not when the worker takes it
    task_ignore_result=True,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


def open_counter(path: str) -> mmap.mmap:
    """The shared count of tasks run (8 bytes), created zeroed if missing."""
    with open(path, "a+b") as file:
        if os.fstat(file.fileno()).st_size < COUNTER.size:
            file.write(bytes(COUNTER.size))
            file.flush()
        return mmap.mmap(file.fileno(), COUNTER.size)


_handled: mmap.mmap | None = None


def _count() -> None:
    global _handled
    if _handled is None:
        _handled = open_counter(os.environ["BENCH_CELERY_COUNTER"])
    COUNTER.pack_into(_handled, 0, COUNTER.unpack_from(_handled, 0)[0] + 1)


def call_completed(form: dict[str, str]) -> None:
    return None


def call_failed(form: dict[str, str]) -> None:
    return None


HANDLERS: dict[str, Callable[[dict[str, str]], None]] = {"completed": call_completed, "failed": call_failed}


@app.task(name="bench.status_callback")
def status_callback(form: dict[str, str]) -> None:
    """Run the handler of the callback's CallStatus, then count the task as run."""
    handler = HANDLERS.get(form.get("CallStatus", ""))
    if handler is not None:
        handler(form)
    _count()

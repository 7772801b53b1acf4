"""Row 8: what a user builds for durable work without twilio_events: a Starlette route that validates
with twilio's RequestValidator and hands the form to a Celery task, run by `celery worker -P solo`.

`.delay()` blocks until Redis has written (and fsynced) the message, so the route calls it in Starlette's
threadpool: the event loop keeps serving, and Redis can fsync the writes of several requests at once.
Starts its own redis-server (the broker, `appendfsync always`, as row 6b's) and the worker as child
processes on this server's CPU, so the harness counts their CPU with the row's. GET /health reports the
callbacks accepted but not yet run by the worker, as twilio_events does, so the harness can wait for the
backlog to drain.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from ..payload import AUTH_TOKEN, EMPTY_TWIML
from .celery_tasks import COUNTER, open_counter
from .celery_tasks import status_callback as task
from .common import run_uvicorn
from .redis_server import start_redis, stop

validator = RequestValidator(AUTH_TOKEN)
accepted = 0


async def status_callback(request: Request) -> Response:
    global accepted
    form = await request.form()
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(str(request.url), form, signature):
        return PlainTextResponse("invalid signature", status_code=403)
    # .delay() blocks on its Redis write (fsynced): in the threadpool, so the event loop serves others
    await run_in_threadpool(task.delay, {name: str(value) for name, value in form.items()})
    accepted += 1
    return Response(EMPTY_TWIML, media_type="text/xml")


async def health(request: Request) -> Response:
    with open_counter(os.environ["BENCH_CELERY_COUNTER"]) as counter:
        handled = COUNTER.unpack_from(counter, 0)[0]
    return JSONResponse({"queued": max(0, accepted - handled), "running": 0, "dead_letters": 0})


app = Starlette(
    routes=[Route("/", status_callback, methods=["POST"]), Route("/health", health, methods=["GET"])]
)


def start_worker() -> subprocess.Popen[bytes]:
    """`celery worker -P solo`: one process running one task at a time, on this process's CPU."""
    command = [sys.executable, "-m", "celery", "-A", "bench.servers.celery_tasks", "worker"]
    command += ["-P", "solo", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    command += ["--without-heartbeat"]
    return subprocess.Popen(command, cwd=Path(__file__).resolve().parents[2])


def _stop_requested(signum: int, frame: object) -> None:
    raise SystemExit(0)


def main() -> None:
    # uvicorn shuts down on SIGTERM, then raises it again with the handler it found: this one, so that the
    # worker and Redis are stopped below rather than left running when the harness stops the row
    signal.signal(signal.SIGTERM, _stop_requested)
    with tempfile.TemporaryDirectory(prefix="twilio-events-bench-celery-") as directory:
        redis, url = start_redis(directory)
        os.environ["CELERY_BROKER_URL"] = url
        os.environ["BENCH_CELERY_COUNTER"] = str(Path(directory) / "handled")
        open_counter(os.environ["BENCH_CELERY_COUNTER"]).close()
        task.app.conf.broker_url = url
        worker = start_worker()
        try:
            run_uvicorn(app)
        finally:
            stop(worker)
            stop(redis)


if __name__ == "__main__":
    main()

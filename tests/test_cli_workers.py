"""`twilio-events run --workers N` and `app.run(processes=N)`: real server processes sharing a port on
127.0.0.1, each recording its PID with the callbacks it ran."""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2

from twilio_events.payloads import Payload, call_payload, new_idempotency_token
from twilio_events.testing import sign

from .conftest import DEADLINE, FORM, TOKEN, Process, assert_one_line_error, encode_form, free_port, wait_for
from .test_cli_run import FASTAPI_APP, accepting, cli, stdout_of, wait_serving

Spawn = Callable[..., Process]

APP = """
import asyncio
import logging
import os
from pathlib import Path

from twilio_events import Listener, TwilioEvents

logging.basicConfig(level="INFO", format="%(process)d %(levelname)s %(message)s")
app = TwilioEvents(listeners=[Listener(int(os.environ.get("PORT", "8090")), host="127.0.0.1")])


def record(what, event):
    with Path("handled.log").open("a") as out:  # appends from several processes stay whole lines
        out.write(f"{os.getpid()} {what} {event.call_sid}\\n")


@app.call.on_ringing
def ringing(event):
    record("ringing", event)


@app.call.on_in_progress
async def slow(event):
    record("start", event)
    await asyncio.sleep(2)
    record("done", event)


if __name__ == "__main__":
    app.run(processes=2)
"""

PER_PROCESS_WARNING = "each process de-duplicates only the callbacks it received itself"
DUPLICATE = re.compile(r"^(\d+) INFO \[twilioListener\] duplicate call callback", re.MULTILINE)
BURST = 16
"""Callbacks sent at once, each on a connection of its own, so that both processes accept some."""


def start(spawn: Spawn, tmp_path: Path, port: int, *args: str, env: dict[str, str] | None = None) -> Process:
    """`python -m twilio_events run app.py --port PORT ARGS` in tmp_path."""
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    base = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "", "TWILIO_EVENTS_STORE": ""}
    command = ["-m", "twilio_events", "run", "app.py", "--host", "127.0.0.1", "--port", str(port), *args]
    return spawn(command, base | (env or {}))


def post(port: int, payload: Payload, token: str | None = None) -> int:
    """Send a signed callback on a new connection; its status code."""
    url = f"http://127.0.0.1:{port}/"
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(url, payload, TOKEN)}
    headers["I-Twilio-Idempotency-Token"] = token or new_idempotency_token()
    return httpx2.post(url, content=encode_form(payload), headers=headers, timeout=DEADLINE).status_code


def burst(port: int, payload: Callable[[], Payload], token: str | None = None) -> None:
    """BURST callbacks at once, every one answered 200."""
    with ThreadPoolExecutor(BURST) as pool:
        codes = list(pool.map(lambda _: post(port, payload(), token), range(BURST)))
    assert codes == [200] * BURST


def records(tmp_path: Path, what: str) -> list[tuple[int, str]]:
    """(PID, CallSid) of each `what` the handlers recorded."""
    log = tmp_path / "handled.log"
    lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
    return [(int(pid), sid) for pid, kind, sid in (line.split() for line in lines) if kind == what]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_share_the_port_and_stop_together_once_handlers_finish(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    process = start(spawn, tmp_path, port, "--workers", "2")
    wait_serving(process, port)

    def both_ran_handlers() -> bool:
        burst(port, lambda: call_payload("ringing"))
        return len({pid for pid, _ in records(tmp_path, "ringing")}) == 2

    wait_for(both_ran_handlers, "both processes to run handlers")
    servers = {pid for pid, _ in records(tmp_path, "ringing")}
    assert process.popen.pid not in servers  # the supervisor serves nothing itself
    assert "2 server processes share every listener" in stdout_of(process)
    assert PER_PROCESS_WARNING in process.stderr
    assert "--store sqlite:///" in process.stderr and "TWILIO_EVENTS_STORE=sqlite:///" in process.stderr
    assert process.stderr.count(PER_PROCESS_WARNING) == 1

    slow = call_payload("in-progress")
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(post, port, slow)
        wait_for(lambda: bool(records(tmp_path, "start")), "the slow handler to start")
        process.terminate()
        assert answer.result(timeout=DEADLINE) == 200

    assert process.wait() == 0
    assert [sid for _, sid in records(tmp_path, "done")] == [slow["CallSid"]]
    assert not any(alive(pid) for pid in servers)
    assert not accepting(port)
    assert "Traceback" not in process.stderr


def test_with_a_sqlite_store_a_copy_runs_nothing_in_any_process(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    process = start(
        spawn, tmp_path, port, "--workers", "2", env={"TWILIO_EVENTS_STORE": "sqlite:///dedupe.db"}
    )
    wait_serving(process, port)
    assert PER_PROCESS_WARNING not in process.stderr
    payload, token = call_payload("ringing"), new_idempotency_token()
    assert post(port, payload, token) == 200
    [(handled_by, _)] = records(tmp_path, "ringing")

    def another_process_got_a_copy() -> bool:
        burst(port, lambda: payload, token)
        return any(int(pid) != handled_by for pid in DUPLICATE.findall(process.stderr))

    wait_for(another_process_got_a_copy, "a copy to reach the other process")
    assert records(tmp_path, "ringing") == [(handled_by, payload["CallSid"])]

    process.terminate()
    assert process.wait() == 0


def test_a_process_that_dies_stops_the_service_with_an_error(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    process = start(spawn, tmp_path, port, "--workers", "2")
    wait_serving(process, port)
    process.wait_for_stderr("2 server processes share the listeners")
    match = re.search(r"share the listeners \(pids (\d+), (\d+)\)", process.stderr)
    assert match is not None
    killed, other = int(match[1]), int(match[2])

    os.kill(killed, signal.SIGKILL)

    assert process.wait() == 1
    assert f"(pid {killed}) was killed by SIGKILL unexpectedly: stopping the service" in process.stderr
    assert "twilio-events: error: a server process failed or ended unexpectedly" in process.stderr
    assert not alive(other)


def test_app_run_with_processes(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    process = spawn(["app.py"], {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_EVENTS_STORE": "", "PORT": str(port)})
    wait_serving(process, port)

    burst(port, lambda: call_payload("ringing"))
    process.terminate()

    assert process.wait() == 0
    assert len(records(tmp_path, "ringing")) == BURST
    assert "2 server processes share the listeners" in process.stderr
    assert process.stderr.count(PER_PROCESS_WARNING) == 1
    assert "Traceback" not in process.stderr


def test_bad_worker_counts_are_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")

    assert_one_line_error(cli("run", "app.py", "--workers", "0", cwd=tmp_path), "--workers: '0'", "1 or more")
    assert_one_line_error(cli("run", "app.py", "--processes", "2", "--reload", cwd=tmp_path), "--reload")


def test_help_tells_the_processes_from_the_durable_workers() -> None:
    result = cli("run", "--help")

    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for expected in ("--workers N, --processes N", "TWILIO_EVENTS_WORKERS", "not TwilioEvents(workers=...)"):
        assert expected in text


def test_an_app_that_mounts_twilio_events_is_served_by_every_process(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FASTAPI_APP, encoding="utf-8")
    port = free_port()
    command = ["-m", "twilio_events", "run", "app.py:app", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn([*command, "--workers", "2"], {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_EVENTS_STORE": ""})
    wait_serving(process, port)

    with ThreadPoolExecutor(BURST) as pool:
        answers = list(
            pool.map(lambda _: httpx2.get(f"http://127.0.0.1:{port}/health", timeout=DEADLINE), range(BURST))
        )
    assert [answer.json() for answer in answers] == [{"status": "ok"}] * BURST
    process.wait_for_stderr("twilio_events ready", count=2)  # one lifespan in each process
    assert len(set(re.findall(r"twilio_events\[(\d+)\]: twilio_events ready", process.stderr))) == 2
    assert PER_PROCESS_WARNING in process.stderr

    process.terminate()
    assert process.wait() == 0
    assert "Traceback" not in process.stderr


def test_durable_processes_sharing_a_sqlite_file_run_each_callback_once(spawn: Spawn, tmp_path: Path) -> None:
    port = free_port()
    options = ["--delivery", "durable", "--store", "sqlite:///events.db"]
    process = start(spawn, tmp_path, port, "--workers", "2", *options)
    wait_serving(process, port)
    callbacks = [(call_payload("ringing"), new_idempotency_token()) for _ in range(BURST)]

    for _ in range(2):  # every callback, then every one again as Twilio's retry
        with ThreadPoolExecutor(BURST) as pool:
            codes = list(pool.map(lambda callback: post(port, *callback), callbacks))
        assert codes == [200] * BURST

    def idle() -> bool:
        health = httpx2.get(f"http://127.0.0.1:{port}/health", timeout=DEADLINE).json()
        return len(records(tmp_path, "ringing")) == BURST and health["queued"] + health["running"] == 0

    wait_for(idle, "every event to run")
    assert sorted(sid for _, sid in records(tmp_path, "ringing")) == sorted(
        p["CallSid"] for p, _ in callbacks
    )
    process.terminate()
    assert process.wait() == 0

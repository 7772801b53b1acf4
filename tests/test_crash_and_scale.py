"""Durable delivery under a crash, over two instances sharing Redis, and under load.

Every test runs tests/apps/durable_app.py in real server processes on 127.0.0.1 and sends them signed
callbacks over real HTTP connections; the handlers record "start KEY" and "done KEY" lines in files, and
the tests check those records: every acknowledged callback handled, and handled twice only where a
killed process had it in hand.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from twilio_events.payloads import call_payload, sign

from .conftest import DEADLINE, FORM, TOKEN, Process, encode_form, free_port, wait_for
from .delivery_support import (
    AppProcess,
    app_processes,
    counts,
    read_records,
    redis_server,
    send_all,
    signed_request,
)

WAIT = 30.0
"""Seconds to wait for the handlers to catch up (a deadline, never a measurement)."""


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    with app_processes(tmp_path) as make:
        yield make


def report(text: str) -> None:
    """A line in the test's output (shown with -s, and by -rA), for what the run measured."""
    sys.stdout.write(text + "\n")


def key_of(sid: str) -> str:
    """The idempotency key of a ringing callback without Twilio's idempotency header."""
    return f"call:{sid}:ringing:0"


def running_keys(database: Path) -> set[str]:
    """The keys the store holds as running: those a killed process had taken and not finished."""
    with contextlib.closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True)) as conn:
        return {key for (key,) in conn.execute("SELECT key FROM events WHERE state = 'running'")}


def test_a_killed_process_runs_what_it_was_running_again_at_the_next_start(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    database = tmp_path / "events.db"
    workers = 4
    service = app_process(
        {"DURABLE_APP_STORE": f"sqlite:///{database}", "DURABLE_APP_WORKERS": str(workers)}
    ).start()
    # every 5th callback blocks mid-way until the gate file exists: the workers get stuck on 4 of them
    payloads = [call_payload("ringing", Block="1" if i % 5 == 0 else None) for i in range(60)]
    keys = [key_of(p["CallSid"]) for p in payloads]
    blocking = {key for key, p in zip(keys, payloads, strict=True) if "Block" in p}

    answers = send_all([signed_request(p) for p in payloads], [service.port], concurrency=8)
    assert answers == [200] * len(payloads)

    def stuck() -> set[str]:
        records = service.records()
        return set(counts(records, "start")) - set(counts(records, "done"))

    wait_for(lambda: len(stuck() & blocking) == workers, f"{workers} handlers to be blocked mid-way")
    service.kill()

    mid_way = running_keys(database)
    assert mid_way == stuck()  # held by the dead process, started and not done
    done_before = set(counts(service.records(), "done"))
    service.log.with_name(service.log.name + ".gate").touch()
    service.start()  # the same SQLite file: whatever the dead process held runs again

    def all_done() -> bool:
        return set(counts(service.records(), "done")) >= set(keys)

    wait_for(all_done, "every acknowledged callback to be handled after the restart", WAIT)
    wait_for(lambda: service.health()["queued"] + service.health()["running"] == 0, "an empty queue")

    records = service.records()
    starts, dones = counts(records, "start"), counts(records, "done")
    assert set(dones) == set(keys)  # de-duplicated by key: each acknowledged callback, nothing else
    ran_twice = {key for key, n in starts.items() if n > 1}
    assert ran_twice == mid_way  # only, and all, those the process was running when it was killed
    assert max(starts.values()) == 2
    assert all(n == 1 for n in dones.values())  # none had finished: they were blocked mid-way
    assert not done_before & mid_way

    # Twilio sending them all again is acknowledged without running anything again
    assert send_all([signed_request(p) for p in payloads], [service.port], concurrency=8) == [200] * 60
    assert service.health()["queued"] == 0
    assert counts(service.records(), "start") == starts
    report(
        f"crash: {len(keys)} acknowledged, killed with {len(mid_way)} mid-way; "
        f"ran twice: {len(ran_twice)}; handled (de-duplicated): {len(dones)}"
    )


def test_two_instances_on_one_redis_lose_nothing_when_one_is_killed(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    workers = 4
    total = 2000
    with redis_server(tmp_path / "redis") as server:
        env = {
            "DURABLE_APP_STORE": server.url,
            "DURABLE_APP_WORKERS": str(workers),
            "DURABLE_APP_LEASE": "2",
            "DURABLE_APP_FSYNC": "0",
        }
        doomed = app_process(env, name="doomed").start()
        survivor = app_process(env, name="survivor")
        survivor.log.with_name(survivor.log.name + ".gate").touch()  # only the doomed instance blocks
        survivor.start()
        # every 10th callback blocks mid-way in the doomed instance: it is certainly running some at the kill
        payloads = [call_payload("ringing", Block="1" if i % 10 == 5 else None) for i in range(total)]
        keys = [key_of(p["CallSid"]) for p in payloads]
        blocking = {key for key, p in zip(keys, payloads, strict=True) if "Block" in p}
        requests = [signed_request(p) for p in payloads]
        targets = [doomed.port, survivor.port]
        answered = 0
        blocked_at_kill: set[str] = set()

        def kill_half_way(_index: int) -> None:
            nonlocal answered
            answered += 1
            if blocked_at_kill or answered < total // 2:
                return
            records = doomed.records()
            blocked_at_kill.update(blocking & (set(counts(records, "start")) - set(counts(records, "done"))))
            if blocked_at_kill:
                os.kill(doomed.pid, signal.SIGKILL)
                targets.remove(doomed.port)  # the load balancer sends the rest to the survivor

        answers = send_all(requests, targets, concurrency=16, timeout=10, on_answer=kill_half_way)
        assert doomed.wait() == -signal.SIGKILL
        unanswered = [i for i, status in enumerate(answers) if status is None]
        assert {status for status in answers if status is not None} == {200}
        # Twilio tries again what got no answer: now the survivor takes it (or knows it already)
        again = send_all([requests[i] for i in unanswered], targets, concurrency=4, timeout=10)
        assert again == [200] * len(unanswered)

        def all_done() -> bool:
            return set(counts(read_records(doomed.log, survivor.log), "done")) >= set(keys)

        # the survivor takes over what the dead instance held once its leases have run out
        wait_for(all_done, "every acknowledged callback to be handled", WAIT)
        wait_for(
            lambda: survivor.health()["queued"] + survivor.health()["running"] == 0,
            "nothing left queued or held in Redis",
        )

    records = read_records(doomed.log, survivor.log)
    starts, dones = counts(records, "start"), counts(records, "done")
    assert set(dones) == set(keys)  # de-duplicated by key, every callback appears once
    ran_twice = {key for key, n in starts.items() if n > 1}
    done_twice = {key for key, n in dones.items() if n > 1}
    # again only what the killed instance's workers had in hand, and certainly those blocked in it
    assert blocked_at_kill <= ran_twice
    assert len(ran_twice) <= workers
    assert done_twice <= ran_twice
    for key in ran_twice:
        assert [r.pid for r in records if r.key == key and r.what == "start"] == [doomed.pid, survivor.pid]
    handled_by = Counter(r.pid for r in records if r.what == "done")
    report(
        f"redis: {total} callbacks, {len(unanswered)} unanswered when one instance was killed (with "
        f"{len(blocked_at_kill)} handlers blocked mid-way) and sent again; handled by the killed/surviving "
        f"instance: {handled_by[doomed.pid]}/{handled_by[survivor.pid]}; ran twice: {len(ran_twice)}, "
        f"finished twice: {len(done_twice)}"
    )


def test_ten_thousand_callbacks_at_64_connections_are_all_handled(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    total = 10_000
    service = app_process(
        {"DURABLE_APP_STORE": f"sqlite:///{tmp_path / 'events.db'}", "DURABLE_APP_FSYNC": "0"}
    ).start()
    payloads = [call_payload("ringing") for _ in range(total)]
    keys = {key_of(p["CallSid"]) for p in payloads}
    assert len(keys) == total

    answers = send_all([signed_request(p) for p in payloads], [service.port], concurrency=64)

    assert Counter(answers) == {200: total}  # every one acknowledged, no other status, none unanswered

    def handled() -> set[str]:
        return set(counts(service.records(), "done"))

    wait_for(lambda: handled() >= keys, "every acknowledged callback to be handled", WAIT)
    wait_for(lambda: service.health()["queued"] + service.health()["running"] == 0, "an empty queue")
    dones = counts(service.records(), "done")
    assert set(dones) == keys
    assert all(n == 1 for n in dones.values())
    assert service.health()["dead_letters"] == 0


SLOW_APP = """
import asyncio, os, time
from twilio_events import TwilioEvents

app = TwilioEvents(delivery="durable", store=os.environ["SLOW_APP_STORE"], lease=1.0, ordering="monotonic")


@app.call.on_ringing
async def ringing(event):
    print("start", event.call_sid, event.status, os.getpid(), time.time(), flush=True)
    await asyncio.sleep(4)  # four leases long: only the heartbeat keeps it (and its SID) held
    print("done", event.call_sid, event.status, os.getpid(), time.time(), flush=True)


@app.call.on_completed
async def completed(event):
    print("start", event.call_sid, event.status, os.getpid(), time.time(), flush=True)
    print("done", event.call_sid, event.status, os.getpid(), time.time(), flush=True)
"""


def run_slow_app(directory: Path, store: str, port: int) -> Process:
    """`twilio-events run app.py --port PORT` in `directory`, serving SLOW_APP on `store`."""
    directory.mkdir()
    (directory / "app.py").write_text(SLOW_APP, encoding="utf-8")
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "SLOW_APP_STORE": store}
    args = ["-m", "twilio_events", "run", "app.py", "--host", "127.0.0.1", "--port", str(port)]
    return Process(args, directory, env)


def served(process: Process, port: int) -> bool:
    if process.popen.poll() is not None:
        pytest.fail(f"`twilio-events run` exited ({process.popen.returncode}):\n{process.stderr}")
    try:
        return httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
    except httpx2.TransportError:
        return False


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_handler_slower_than_the_lease_runs_once_and_holds_its_sid_in_every_process(
    tmp_path: Path, kind: str
) -> None:
    with contextlib.ExitStack() as stack:
        if kind == "redis":
            store = stack.enter_context(redis_server(tmp_path / "redis")).url
        else:
            store = f"sqlite:///{tmp_path / 'events.db'}"
        first_port, second_port = free_port(), free_port()
        first = run_slow_app(tmp_path / "first", store, first_port)
        stack.callback(first.kill)
        wait_for(lambda: served(first, first_port), "the first process to serve")
        ringing = call_payload("ringing", SequenceNumber="1")
        sid = ringing["CallSid"]
        assert post(first_port, ringing) == 200
        wait_for(lambda: len(runs(first)) == 1, "the first process to start the handler")

        # the second starts (its start-up recovery runs) while the first is mid-way through the handler,
        # and gets the call's completed: it waits for the first to let go of the SID, then puts it off
        second = run_slow_app(tmp_path / "second", store, second_port)
        stack.callback(second.kill)
        wait_for(lambda: served(second, second_port), "the second process to serve")
        assert post(second_port, call_payload("completed", CallSid=sid, SequenceNumber="3")) == 200

        def both() -> list[str]:
            return runs(first) + runs(second)

        wait_for(lambda: len(both()) == 4, "completed to run, in either process", DEADLINE)
        health = httpx2.get(f"http://127.0.0.1:{second_port}/health", timeout=DEADLINE).json()
        assert (health["queued"], health["running"]) == (0, 0)  # completed: nobody can run them now
        one = first.popen.pid
        assert runs(first)[:2] == [f"start {sid} ringing {one}", f"done {sid} ringing {one}"]  # once
        assert [line.split()[:3] for line in both()[2:]] == [
            ["start", sid, "completed"],
            ["done", sid, "completed"],
        ]
        # the first let go of the SID (and recorded ringing) before completed started, wherever it ran
        assert at(first)["ringing"] <= min(at(first).get("completed", 2e9), at(second).get("completed", 2e9))


def post(port: int, payload: dict[str, str]) -> int:
    """POST one signed callback to the process on `port`; its status."""
    url = f"http://127.0.0.1:{port}/"
    answer = httpx2.post(
        url,
        content=encode_form(payload),
        headers={"Content-Type": FORM, "X-Twilio-Signature": sign(url, payload, TOKEN)},
        timeout=DEADLINE,
    )
    return answer.status_code


def runs(process: Process) -> list[str]:
    """The handler's "start SID STATUS PID" and "done SID STATUS PID" lines in the process's output."""
    lines = process.stdout_path.read_text(encoding="utf-8").splitlines()
    return [line.rpartition(" ")[0] for line in lines if line.startswith(("start CA", "done CA"))]


def at(process: Process) -> dict[str, float]:
    """When (Unix time) the process finished running ringing and started running completed, if it did."""
    times = {}
    for line in process.stdout_path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if line.startswith("done CA") and fields[2] == "ringing":
            times["ringing"] = float(fields[-1])
        elif line.startswith("start CA") and fields[2] == "completed":
            times["completed"] = float(fields[-1])
    return times


def test_a_killed_redis_instance_restarted_with_its_identity_runs_its_events_again_at_once(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    with redis_server(tmp_path / "redis") as server:
        # the default lease (30 s): taking the event back sooner than that is the restart's doing
        # one name for both, and no other process on the machine (consumer slots are machine-wide)
        env = {"DURABLE_APP_STORE": server.url, "DURABLE_APP_CONSUMER": f"instance-{uuid.uuid4().hex[:8]}"}
        doomed = app_process(env, name="doomed").start()
        twin = app_process(env, name="twin").start()  # the same name, alive: it must take nothing
        payload = call_payload("ringing", Block="1")
        key = key_of(payload["CallSid"])
        assert send_all([signed_request(payload)], [doomed.port], concurrency=1) == [200]
        wait_for(lambda: counts(doomed.records(), "start")[key] == 1, "the handler to start")
        doomed.kill()
        doomed.log.with_name(doomed.log.name + ".gate").touch()
        twin.log.with_name(twin.log.name + ".gate").touch()
        assert counts(twin.records(), "start") == Counter()  # the twin left the live holder's event alone
        doomed.start()  # the same consumer name: it takes its slot, and what the slot held, back

        def done() -> int:
            return counts(doomed.records(), "done")[key] + counts(twin.records(), "done")[key]

        # Made ready again at the restart, the event runs at once, on the restarted instance or on the twin
        # (both claim ready events): not after the 30 s lease.
        wait_for(lambda: done() == 1, "the event to run again after the restart", 20.0)
        wait_for(lambda: doomed.health()["running"] == twin.health()["running"] == 0, "it to complete")
        records = read_records(doomed.log, twin.log)
        starts = [record.pid for record in records if record.key == key and record.what == "start"]
        assert len(starts) == 2 and starts[0] != starts[1]  # killed, then run once more
        assert done() == 1

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
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twilio_events.payloads import call_payload

from .conftest import wait_for
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
            "DURABLE_APP_VISIBILITY_TIMEOUT": "2",
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

        # the survivor takes back what the dead instance held once the visibility timeout has passed
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

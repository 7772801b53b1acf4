"""Several instances sharing one store: monotonic ordering across them, a killed instance among three, and
Redis itself restarted under load.

Every test runs tests/apps/durable_app.py in real server processes on 127.0.0.1 with a real redis-server
(append-only, fsync always), sends them signed callbacks over real HTTP connections, and checks what the
handlers recorded ("start KEY PID" and "done KEY PID" lines).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from twilio_events.payloads import Payload, call_payload

from .conftest import DEADLINE, wait_for
from .delivery_support import (
    AppProcess,
    Record,
    app_processes,
    counts,
    read_records,
    redis_server,
    send_all,
    signed_request,
)

LIFECYCLE = ["initiated", "ringing", "in-progress", "completed"]
RANK = {status: rank for rank, status in enumerate(LIFECYCLE)}


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    with app_processes(tmp_path) as make:
        yield make


def report(text: str) -> None:
    """A line in the test's output (shown with -s, and by -rA), for what the run measured."""
    sys.stdout.write(text + "\n")


def lifecycles(calls: int, seed: int, **extra: str) -> list[Payload]:
    """`calls` whole call lifecycles (SequenceNumber 0 to 3), a quarter of the callbacks sent twice, all
    shuffled together: the disorder Twilio allows."""
    rng = random.Random(seed)
    payloads: list[Payload] = []
    for _ in range(calls):
        sid = call_payload("initiated")["CallSid"]
        for seq, status in enumerate(LIFECYCLE):
            payload = call_payload(status, CallSid=sid, SequenceNumber=str(seq), **extra)
            payloads += [payload] * (2 if rng.random() < 0.25 else 1)
    rng.shuffle(payloads)
    return payloads


def key_of(payload: Payload) -> str:
    """The idempotency key of a call status callback sent without Twilio's idempotency header."""
    return f"call:{payload['CallSid']}:{payload['CallStatus']}:{payload['SequenceNumber']}"


def held_in_redis(port: int, consumer: str) -> set[str]:
    """The keys of the events `consumer` holds in the Redis store on `port` (claimed, not finished)."""
    with redis.Redis(port=port, decode_responses=True) as client:
        holders = client.hgetall("twilio_events:holders")
        ids = [event_id for event_id, holder in holders.items() if holder.partition(":")[2] == consumer]
        events = client.hmget("twilio_events:events", ids) if ids else []
    return {json.loads(event)["key"] for event in events if event}


def runs_by_sid(records: list[Record]) -> dict[str, list[tuple[str, str]]]:
    """Each SID's ("start"/"done", status) records, in the order they were appended to the shared file."""
    by_sid: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for record in records:
        _, sid, status, _ = record.key.split(":")
        by_sid[sid].append((record.what, status))
    return by_sid


@pytest.mark.parametrize(
    ("store", "delivery"), [("redis", "durable"), ("redis", "inline"), ("sqlite", "durable")]
)
def test_monotonic_ordering_holds_across_two_instances_sharing_a_store(
    tmp_path: Path, app_process: Callable[..., AppProcess], store: str, delivery: str
) -> None:
    calls = 150
    shared = tmp_path / "handled.records"  # both instances append to it: one order for all their runs
    with contextlib.ExitStack() as stack:
        if store == "redis":
            url = stack.enter_context(redis_server(tmp_path / "redis")).url
        else:
            url = f"sqlite:///{tmp_path / 'events.db'}"
        env = {
            "DURABLE_APP_STORE": url,
            "DURABLE_APP_DELIVERY": delivery,
            "DURABLE_APP_ORDERING": "monotonic",
            "DURABLE_APP_LOG": str(shared),
            "DURABLE_APP_FSYNC": "0",
            # a few handlers at once per instance, so that neither can claim the whole queue by itself
            "DURABLE_APP_WORKERS": "4",
        }
        one, two = app_process(env, name="one").start(), app_process(env, name="two").start()
        # each handler sleeps a little, so that two instances running one SID at once would overlap
        payloads = lifecycles(calls, seed=7, Sleep="0.01")
        requests = [signed_request(p) for p in payloads]
        # connection n goes to instance n % 2: one call's statuses reach both instances at the same time
        answers = send_all(requests, [one.port, two.port], concurrency=16, timeout=15)
        assert Counter(answers) == {200: len(payloads)}

        sids = {p["CallSid"] for p in payloads}

        def every_call_completed() -> bool:
            by_sid = runs_by_sid(read_records(shared))
            return all(("done", "completed") in by_sid.get(sid, []) for sid in sids)

        wait_for(every_call_completed, "every call's completed status to be handled", 30)
        if delivery == "durable":
            wait_for(lambda: one.health()["queued"] + one.health()["running"] == 0, "an empty queue")

    records = read_records(shared)
    assert {r.pid for r in records} == {one.pid, two.pid}  # both instances handled callbacks
    for sid, runs in runs_by_sid(records).items():
        starts = [status for what, status in runs if what == "start"]
        assert [RANK[s] for s in starts] == sorted({RANK[s] for s in starts}), f"{sid} went back: {starts}"
        assert starts[-1] == "completed"  # nothing ran after the final status
        # one at a time: each run of the SID finished before the next one started, whichever instance
        assert runs == [(what, s) for s in starts for what in ("start", "done")], f"{sid} overlapped: {runs}"
    skipped = len({key_of(p) for p in payloads}) - len(counts(records, "start"))
    report(
        f"ordering ({store}, {delivery}): {len(payloads)} callbacks of {calls} calls to two instances; "
        f"handled {len(counts(records, 'start'))}, skipped as late {skipped}, none out of order"
    )


def test_three_instances_on_one_redis_lose_nothing_when_one_is_killed_and_restarted(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    """5,000 signed callbacks (4,000 distinct: 1,000 shuffled call lifecycles, 1,000 of them sent twice)
    to three instances sharing Redis; one is SIGKILLed half-way and started again while the rest arrive."""
    workers = 8
    with redis_server(tmp_path / "redis") as server:
        env = {"DURABLE_APP_STORE": server.url, "DURABLE_APP_WORKERS": str(workers), "DURABLE_APP_FSYNC": "0"}
        doomed = app_process(env, name="doomed").start()
        others = [app_process(env, name=f"other{n}").start() for n in (1, 2)]
        # a handler takes a little while, so that the killed instance certainly has some in hand
        distinct = lifecycles(1000, seed=11, Sleep="0.02")
        rng = random.Random(12)
        payloads = distinct[:]
        while len(payloads) < 5000:
            payloads.insert(rng.randrange(len(payloads) + 1), rng.choice(distinct))
        keys = {key_of(p) for p in payloads}
        requests = [signed_request(p) for p in payloads]
        targets = [doomed.port, *(o.port for o in others)]
        answered = 0
        in_flight: set[str] = set()
        restart: list[float] = []

        def kill_then_restart(_index: int) -> None:
            nonlocal answered
            answered += 1
            if answered == len(payloads) // 2:
                os.kill(doomed.pid, signal.SIGKILL)
                targets.remove(doomed.port)  # the load balancer sends the rest to the others
                doomed.wait()
                in_flight.update(held_in_redis(server.port, f"{doomed.env['DURABLE_APP_CONSUMER']}:1"))
                starting.start()

        def start_again() -> None:
            restart.append(time.monotonic())
            doomed.start()  # its consumer name again: it takes back at once what it held
            targets.append(doomed.port)

        starting = threading.Thread(target=start_again)
        began = time.monotonic()
        answers = send_all(
            requests, targets, concurrency=24, timeout=10, total=90, on_answer=kill_then_restart
        )
        sent_in = time.monotonic() - began
        starting.join(DEADLINE)
        assert restart, "the killed instance was not started again"
        unanswered = [i for i, status in enumerate(answers) if status is None]
        assert {status for status in answers if status is not None} == {200}
        # Twilio sends again what got no answer (cut off by the kill)
        again = send_all([requests[i] for i in unanswered], targets, concurrency=4, timeout=10)
        assert again == [200] * len(unanswered)
        instances = [doomed, *others]

        def all_done() -> bool:
            return set(counts(read_records(*(i.log for i in instances)), "done")) >= keys

        wait_for(all_done, "every acknowledged callback to be handled", 60)
        handled_in = time.monotonic() - restart[0]
        wait_for(
            lambda: doomed.health()["queued"] + doomed.health()["running"] == 0, "nothing queued or held"
        )

    records = read_records(*(i.log for i in instances))
    starts, dones = counts(records, "start"), counts(records, "done")
    assert set(dones) == keys  # every distinct callback handled, and nothing else
    ran_twice = {key for key, n in starts.items() if n > 1}
    # only what the killed instance had in hand ran twice: copies Twilio sent were recognised
    assert ran_twice <= in_flight
    assert len(in_flight) <= workers
    assert handled_in < 60
    handled_by = Counter(r.pid for r in records if r.what == "done")
    report(
        f"three instances: {len(payloads)} callbacks ({len(keys)} distinct) sent in {sent_in:.1f} s, "
        f"{len(unanswered)} unanswered at the kill and sent again; held by it at the kill: {len(in_flight)}, "
        f"ran twice: {len(ran_twice)}; all handled {handled_in:.1f} s after the restart; handled per "
        f"process: {sorted(handled_by.values())}"
    )


def test_redis_restarted_under_load_loses_no_acknowledged_callback_and_the_service_recovers(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    """3,000 callbacks to two instances while Redis (append-only, fsync always) is SIGKILLed and started
    again: what was acknowledged survives it, what could not be stored was answered 503."""
    with redis_server(tmp_path / "redis") as server:
        env = {
            "DURABLE_APP_STORE": server.url,
            "DURABLE_APP_WORKERS": "8",
            "DURABLE_APP_FSYNC": "0",
            # an event whose outcome could not be recorded during the outage runs again once its lease
            # runs out: a short one keeps the test short
            "DURABLE_APP_LEASE": "3",
        }
        instances = [app_process(env, name=f"instance{n}").start() for n in (1, 2)]
        payloads = [call_payload("ringing", Sleep="0.01") for _ in range(3000)]
        keys = [f"call:{p['CallSid']}:ringing:0" for p in payloads]
        requests = [signed_request(p) for p in payloads]
        answered = 0
        outage: list[float] = []

        def restart() -> None:
            server.stop(signal.SIGKILL)
            outage.append(time.monotonic())
            time.sleep(1.5)  # callbacks keep arriving meanwhile
            server.start()  # the same port and append-only file
            outage.append(time.monotonic())

        restarting = threading.Thread(target=restart)

        def stop_redis_a_third_of_the_way(_index: int) -> None:
            nonlocal answered
            answered += 1
            if answered == len(payloads) // 3:
                restarting.start()

        ports = [i.port for i in instances]
        answers = send_all(
            requests, ports, concurrency=16, timeout=15, total=90, on_answer=stop_redis_a_third_of_the_way
        )
        restarting.join(DEADLINE)
        assert len(outage) == 2, "Redis was not started again"
        statuses = Counter(answers)
        assert set(statuses) <= {200, 503}  # each one stored and acknowledged, or refused so Twilio retries
        assert statuses[503] > 0  # the outage was felt
        # the service recovers by itself: healthy again, and Twilio's retries of the refused ones accepted
        for instance in instances:
            wait_for(lambda i=instance: i.health()["http_status"] == 200, "health to recover with Redis")
        refused = [i for i, status in enumerate(answers) if status == 503]
        assert send_all([requests[i] for i in refused], ports, concurrency=8) == [200] * len(refused)

        def all_done() -> bool:
            return set(counts(read_records(*(i.log for i in instances)), "done")) >= set(keys)

        wait_for(all_done, "every acknowledged callback to be handled", 60)
        recovered_in = time.monotonic() - outage[1]
        wait_for(
            lambda: instances[0].health()["queued"] + instances[0].health()["running"] == 0, "an empty queue"
        )

    records = read_records(*(i.log for i in instances))
    dones = counts(records, "done")
    assert set(dones) == set(keys)
    ran_twice = sum(1 for n in counts(records, "start").values() if n > 1)
    report(
        f"redis restart: {len(payloads)} callbacks, Redis down {outage[1] - outage[0]:.1f} s; answered "
        f"{statuses[200]} x 200, {statuses[503]} x 503 (sent again, accepted); every acknowledged one "
        f"handled {recovered_in:.1f} s after Redis came back; ran twice: {ran_twice}"
    )

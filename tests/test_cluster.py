"""Several instances sharing one store: monotonic ordering across them, a killed instance among three, and
Redis itself restarted under load.

Every test runs tests/apps/durable_app.py in real server processes on 127.0.0.1 with a real redis-server
(append-only, fsync always), sends them signed callbacks over real HTTP connections, and checks what the
handlers recorded ("start KEY PID" and "done KEY PID" lines).
"""

from __future__ import annotations

import contextlib
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from twilio_events.payloads import Payload, call_payload

from .conftest import wait_for
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

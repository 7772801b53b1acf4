"""Delivery guarantees over real HTTP: retries and dead letters, inline de-duplication, inbound replies in
durable mode, the health endpoint, ordering and de-duplication of what `twilio-events simulate` sends, and
shutting down on SIGTERM.

Apps run on real uvicorn servers on 127.0.0.1 (in a thread, or tests/apps/durable_app.py in a process of
its own for SIGTERM), with real SQLite files and a real redis-server the test starts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from twilio.twiml.messaging_response import MessagingResponse

from twilio_events import CallEvent, SmsEvent, TwilioEvents
from twilio_events.delivery import runner
from twilio_events.payloads import call_payload, inbound_sms_payload
from twilio_events.stores import StatusMark, StoreStats
from twilio_events.stores.redis import RedisStore
from twilio_events.stores.sqlite import SqliteStore

from .conftest import DEADLINE, TOKEN, LiveServer, running, wait_for
from .delivery_support import (
    AppProcess,
    app_processes,
    counts,
    redis_server,
    send_all,
    signed_request,
)

SCRIPT = Path(sys.executable).with_name("twilio-events")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
GRACE = 2.0
"""shutdown_grace of the in-process apps: their blocked handlers are always released before the end."""


@pytest.fixture
def app_process(tmp_path: Path) -> Iterator[Callable[..., AppProcess]]:
    with app_processes(tmp_path) as make:
        yield make


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'events.db'}"


def store_contents(path: Path) -> tuple[StoreStats, list[Any]]:
    """What a SQLite store holds, read beside (or after) the service, as `twilio-events inbox` does."""

    async def read() -> tuple[StoreStats, list[Any]]:
        store = SqliteStore(path)
        await store.open(recover=False)
        try:
            return await store.stats(), await store.dead_letters()
        finally:
            await store.close()

    return asyncio.run(read())


def health(server: LiveServer) -> tuple[int, dict[str, Any]]:
    response = server.request("GET", "/health")
    return response.status_code, response.json()


# Durable: retries, dead letters, inbound replies


def test_a_failing_handler_is_retried_with_back_off_then_dead_lettered_with_its_last_error(
    tmp_path: Path,
) -> None:
    app = TwilioEvents(
        auth_token=TOKEN,
        delivery="durable",
        store=sqlite_url(tmp_path),
        max_attempts=3,
        retry_delay=0.05,  # waits of up to 0.05 s, then up to 0.1 s
        shutdown_grace=GRACE,
    )
    attempts: list[str] = []
    hopeless, lucky = "CA" + "1" * 32, "CA" + "2" * 32

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        attempts.append(event.call_sid)
        number = attempts.count(event.call_sid)
        if event.call_sid == hopeless or number < 3:
            raise RuntimeError(f"attempt {number} of {event.call_sid}")

    with running(app, lifespan="on") as server:
        for sid in (hopeless, lucky):
            assert server.callback(call_payload("ringing", CallSid=sid)).status_code == 200

        wait_for(lambda: health(server)[1]["dead_letters"] == 1, "the dead letter", DEADLINE * 2)
        wait_for(lambda: health(server)[1]["queued"] + health(server)[1]["running"] == 0, "an empty queue")

        stats, dead = store_contents(tmp_path / "events.db")
    assert (stats.queued, stats.running, stats.dead) == (0, 0, 1)
    (letter,) = dead
    assert (letter.key, letter.attempts) == (f"call:{hopeless}:ringing:0", 3)
    assert letter.last_error is not None
    # the traceback of the last failure, down to the handler's own line
    assert letter.last_error.startswith("Traceback (most recent call last):")
    assert 'raise RuntimeError(f"attempt {number} of {event.call_sid}")' in letter.last_error
    assert letter.last_error.endswith(f"\nRuntimeError: attempt 3 of {hopeless}")
    assert dict(letter.params)["CallSid"] == hopeless
    assert attempts.count(hopeless) == 3  # max_attempts, and no more
    assert attempts.count(lucky) == 3  # failed twice, succeeded on the third attempt: not a dead letter


def test_an_incoming_message_is_answered_with_its_twiml_reply_in_durable_mode(tmp_path: Path) -> None:
    app = TwilioEvents(auth_token=TOKEN, delivery="durable", store=sqlite_url(tmp_path), shutdown_grace=GRACE)
    handled: list[str] = []

    @app.sms.on_received
    def reply(event: SmsEvent) -> MessagingResponse:
        handled.append(f"received {event.body}")
        response = MessagingResponse()
        response.message(f"You said: {event.body}")
        return response

    @app.call.on_completed
    async def completed(event: CallEvent) -> None:
        handled.append("completed")

    with running(app, lifespan="on") as server:
        response = server.callback(inbound_sms_payload(body="hello there"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert "<Message>You said: hello there</Message>" in response.text
        assert handled == ["received hello there"]  # ran before the answer, in the request
        assert health(server)[1]["queued"] + health(server)[1]["running"] == 0  # never stored

        # a status callback in the same app is stored, acknowledged at once and run by a worker
        response = server.callback(call_payload("completed"))
        assert (response.status_code, response.text) == (200, EMPTY_TWIML)
        wait_for(lambda: "completed" in handled, "the worker to run the completed handler")


def test_a_callback_with_an_out_of_range_timestamp_is_still_handled_by_a_worker(tmp_path: Path) -> None:
    app = TwilioEvents(
        auth_token=TOKEN, delivery="durable", store=sqlite_url(tmp_path), workers=1, shutdown_grace=GRACE
    )
    seen: list[tuple[str, Any]] = []

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        seen.append((event.call_sid, event.timestamp))

    odd = call_payload("ringing", Timestamp="Fri, 08 Jan 99999999999999999999 17:18:38 +0000")
    normal = call_payload("ringing")
    with running(app, lifespan="on") as server:
        assert server.callback(odd).status_code == 200
        assert server.callback(normal).status_code == 200
        wait_for(lambda: len(seen) == 2, "both callbacks to be handled by the one worker")
    assert seen[0] == (odd["CallSid"], None)  # a Timestamp that is no date is None, as documented
    assert seen[1][0] == normal["CallSid"] and seen[1][1] is not None


def test_an_event_that_cannot_be_dispatched_is_retried_then_dead_lettered(tmp_path: Path) -> None:
    # A stored event no channel can take (written by another version, or damaged): the failure is not
    # a handler's, but the event must still follow the retry rules instead of staying held forever.
    app = TwilioEvents(
        auth_token=TOKEN, delivery="durable", store=sqlite_url(tmp_path), max_attempts=2, retry_delay=0.01
    )

    async def scenario() -> list[str | None]:
        async with app.lifespan():
            assert await app.store.enqueue("fax:FX1:sent:", "fax", [("FaxStatus", "sent")], 60.0)
            for _ in range(400):
                if (await app.store.stats()).dead:
                    break
                await asyncio.sleep(0.01)
            return [letter.last_error for letter in await app.store.dead_letters()]

    errors = asyncio.run(scenario())

    assert len(errors) == 1 and errors[0] is not None and "KeyError" in errors[0]


def test_monotonic_ordering_holds_between_workers_running_one_sid(tmp_path: Path) -> None:
    app = TwilioEvents(
        auth_token=TOKEN,
        delivery="durable",
        store=sqlite_url(tmp_path),
        ordering="monotonic",
        workers=2,
        shutdown_grace=GRACE,
    )
    release = threading.Event()
    handled: list[str] = []

    @app.call.on_any
    async def any_status(event: CallEvent) -> None:
        handled.append(str(event.status))
        while event.status == "completed" and not release.is_set():
            await asyncio.sleep(0.01)

    sid = "CA" + "3" * 32
    try:
        with running(app, lifespan="on") as server:
            completed = call_payload("completed", CallSid=sid, SequenceNumber="3")
            assert server.callback(completed).status_code == 200
            wait_for(lambda: handled == ["completed"], "the completed handler to start")
            late = call_payload("ringing", CallSid=sid, SequenceNumber="1")
            assert server.callback(late).status_code == 200
            # the second worker has taken the late ringing while completed still runs
            wait_for(lambda: health(server)[1]["running"] == 2, "both workers to hold an event")
            release.set()
            wait_for(lambda: sum(health(server)[1][n] for n in ("queued", "running")) == 0, "0 queued")
    finally:
        release.set()
    assert handled == ["completed"]  # ringing came after a final status: acknowledged, never run


def test_an_inline_callback_waits_for_a_sid_another_process_holds_and_then_reads_its_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "INLINE_WAIT", 0.5)  # a wait the test can afford (10 s otherwise)
    app = TwilioEvents(auth_token=TOKEN, store=sqlite_url(tmp_path), ordering="monotonic")
    handled: list[tuple[str, str | None]] = []

    @app.call.on_any
    async def any_status(event: CallEvent) -> None:
        handled.append((str(event.status), event.previous_status))

    sid = "CA" + "4" * 32
    other = SqliteStore(tmp_path / "events.db")  # another process's view of the same file

    async def hold() -> None:
        await other.open(recover=False)
        assert (await other.claim_sid(sid, "elsewhere", 60.0)).held

    async def let_go() -> None:
        in_progress = StatusMark("in-progress", (3, 2), final=False)
        await other.release_sid(sid, "elsewhere", in_progress, 3600.0)
        await other.close()

    with running(app, lifespan="on") as server:
        asyncio.run(hold())
        ringing = call_payload("ringing", CallSid=sid, SequenceNumber="1")
        started = time.monotonic()
        refused = server.callback(ringing)
        assert refused.status_code == 503  # after waiting: Twilio sends it again later
        assert "same SID is running" in refused.text
        assert time.monotonic() - started >= 0.5
        assert handled == []

        asyncio.run(let_go())  # the other process ran in-progress, and let go
        assert server.callback(ringing).status_code == 200  # Twilio's retry: now late, not run
        completed = call_payload("completed", CallSid=sid, SequenceNumber="3")
        assert server.callback(completed).status_code == 200
    assert handled == [("completed", "in-progress")]


# Inline de-duplication


@pytest.fixture
def flaky_inline(serve: Callable[..., LiveServer]) -> tuple[LiveServer, list[str], set[str]]:
    """An inline app whose ringing handler records each run and fails while the SID is in `failing`."""
    app = TwilioEvents(auth_token=TOKEN)
    runs: list[str] = []
    failing: set[str] = set()

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        runs.append(event.call_sid)
        if event.call_sid in failing:
            raise RuntimeError("not now")

    return serve(app), runs, failing


def test_inline_copies_of_a_handled_callback_are_acknowledged_without_running(
    flaky_inline: tuple[LiveServer, list[str], set[str]],
) -> None:
    server, runs, _ = flaky_inline
    payload = call_payload("ringing")
    for _ in range(3):
        response = server.callback(payload)
        assert (response.status_code, response.text) == (200, EMPTY_TWIML)
    assert runs == [payload["CallSid"]]

    # the same SID with another SequenceNumber is another callback
    assert server.callback({**payload, "SequenceNumber": "1"}).status_code == 200
    assert runs == [payload["CallSid"]] * 2


def test_inline_copies_are_recognised_by_twilios_idempotency_token(
    flaky_inline: tuple[LiveServer, list[str], set[str]],
) -> None:
    server, runs, _ = flaky_inline
    token = {"I-Twilio-Idempotency-Token": "idem-1"}
    first, retried = call_payload("ringing"), call_payload("ringing")  # a retry may differ (Timestamp...)
    assert server.callback(first, headers=token).status_code == 200
    assert server.callback(retried, headers=token).status_code == 200
    assert runs == [first["CallSid"]]
    assert server.callback(retried, headers={"I-Twilio-Idempotency-Token": "idem-2"}).status_code == 200
    assert runs == [first["CallSid"], retried["CallSid"]]


def test_inline_retry_after_a_failure_runs_the_handler_again(
    flaky_inline: tuple[LiveServer, list[str], set[str]],
) -> None:
    server, runs, failing = flaky_inline
    payload = call_payload("ringing")
    sid = payload["CallSid"]
    failing.add(sid)
    assert server.callback(payload).status_code == 500
    assert server.callback(payload).status_code == 500  # still failing: still not handled
    failing.discard(sid)
    assert server.callback(payload).status_code == 200
    assert server.callback(payload).status_code == 200  # now handled: acknowledged, not run
    assert runs == [sid] * 3


@pytest.mark.parametrize("shared_store", [False, True], ids=["memory", "sqlite"])
def test_concurrent_inline_copies_run_the_handler_once(
    serve: Callable[..., LiveServer], tmp_path: Path, shared_store: bool
) -> None:
    # a SQLite store makes the de-dup lookup really wait, which is when copies can overtake each other
    app = TwilioEvents(auth_token=TOKEN, store=sqlite_url(tmp_path) if shared_store else None)
    runs: list[str] = []

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        runs.append(event.call_sid)
        await asyncio.sleep(0.05)  # the copies arrive while it runs

    server = serve(app)
    payload = call_payload("ringing")
    request = signed_request(payload, public_url=server.url("/"))
    assert send_all([request] * 8, [server.port], concurrency=8) == [200] * 8
    assert runs == [payload["CallSid"]]


# Health


def test_health_reports_the_queue_and_is_503_while_redis_is_stopped(tmp_path: Path) -> None:
    release = threading.Event()
    handled: list[str] = []
    with redis_server(tmp_path / "redis") as redis:
        store = RedisStore(redis.url, timeout=1.0, retries=0)
        app = TwilioEvents(auth_token=TOKEN, delivery="durable", store=store, workers=1, shutdown_grace=GRACE)

        @app.call.on_ringing
        async def ringing(event: CallEvent) -> None:
            while not release.is_set():
                await asyncio.sleep(0.01)
            handled.append(event.call_sid)

        try:
            with running(app, lifespan="on") as server:
                status, body = health(server)
                assert status == 200
                assert body == {
                    "status": "ok",
                    "delivery": "durable",
                    "store": "ok",
                    "queued": 0,
                    "running": 0,
                    "dead_letters": 0,
                    "oldest_waiting_s": None,
                    "consumers": {},
                }
                payloads = [call_payload("ringing") for _ in range(5)]
                for payload in payloads:
                    assert server.callback(payload).status_code == 200
                # one worker: one event runs (blocked), four wait
                wait_for(lambda: health(server)[1]["running"] == 1, "the worker to take one event")
                body = health(server)[1]
                assert (body["queued"], body["running"]) == (4, 1)
                # this process, under its consumer name
                assert list(body["consumers"].values()) == [{"running": 1, "lease_expiries": 0}]
                assert 0 <= body["oldest_waiting_s"] < DEADLINE  # four wait: the oldest for a moment

                release.set()
                wait_for(lambda: len(handled) == 5, "the five events to be handled")
                wait_for(lambda: health(server)[1]["queued"] + health(server)[1]["running"] == 0, "0 queued")

                redis.stop()
                status, body = health(server)
                assert status == 503
                # the reason is in the log; the unauthenticated endpoint does not show hosts or paths
                assert (body["status"], body["store"]) == ("unavailable", "unavailable")
                refused = server.callback(call_payload("ringing"))
                assert refused.status_code == 503  # not stored, so not acknowledged: Twilio may retry
                assert "could not be stored" in refused.text

                redis.start()  # same port, same append-only file
                wait_for(lambda: health(server)[0] == 200, "health to recover with Redis")
                late = call_payload("ringing")
                assert server.callback(late).status_code == 200
                wait_for(lambda: late["CallSid"] in handled, "an event accepted after the restart to run")
                assert sorted(handled) == sorted([p["CallSid"] for p in payloads] + [late["CallSid"]])
        finally:
            release.set()


def test_inline_health_answers_ok_with_a_memory_store(serve: Callable[..., LiveServer]) -> None:
    server = serve(TwilioEvents(auth_token=TOKEN))
    status, body = health(server)
    assert status == 200
    assert (body["status"], body["delivery"], body["store"]) == ("ok", "inline", "ok")


# Ordering and de-duplication of simulated lifecycles (the real `twilio-events simulate` command)

CALL_RANKS = {"queued": 0, "initiated": 1, "ringing": 2, "in-progress": 3}
SMS_RANKS = {"accepted": 0, "scheduled": 0, "queued": 1, "sending": 2, "sent": 3, "delivered": 4, "read": 5}
FINAL_RANK = 10
"""Twilio's lifecycles as the README states them: anything not listed above is a final status."""

SIMULATIONS = [
    ("call", "completed", 11),
    ("call", "busy", 12),
    ("call", "no-answer", 13),
    ("call", "completed", 14),
    ("sms", "delivered", 15),
    ("sms", "undelivered", 16),
    ("sms", "delivered", 17),
]
"""(kind, outcome, seed) of each `simulate --lifecycle --duplicate --out-of-order` run."""

SENT = re.compile(
    r"^\[\d+/\d+\] (?P<channel>call|sms) (?P<status>\S+) +(?P<sid>\S+)(?: seq (?P<seq>\d+))?"
    r"(?: ErrorCode \d+)?(?P<repeat> \(repeat\))? -> (?P<code>\d{3}) "
)


@dataclass(frozen=True)
class Callback:
    channel: str
    sid: str
    status: str
    seq: str

    @property
    def rank(self) -> tuple[int, int]:
        ranks = CALL_RANKS if self.channel == "call" else SMS_RANKS
        return ranks.get(self.status, FINAL_RANK), int(self.seq or 0)

    @property
    def final(self) -> bool:
        return self.rank[0] == FINAL_RANK or (self.channel == "sms" and self.status == "read")


def simulate_lifecycles(url: str) -> list[tuple[Callback, bool]]:
    """Run every simulation (concurrently: one SID each) against `url`; what each sent, in order, and
    whether the command marked it a repeat. Every callback must have been answered 200."""
    commands = [
        [
            *(str(SCRIPT), "simulate", kind, "--lifecycle", "--outcome", outcome, "--duplicate"),
            *("--out-of-order", "--seed", str(seed), "--url", url, "--auth-token", TOKEN, "--timeout", "10"),
        ]
        for kind, outcome, seed in SIMULATIONS
    ]
    env = {name: value for name, value in os.environ.items() if not name.startswith("TWILIO_")}
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for command in commands
    ]
    sent: list[tuple[Callback, bool]] = []
    try:
        for process in processes:
            out, err = process.communicate(timeout=DEADLINE)
            assert process.returncode == 0, out + err
            lines = [SENT.match(line) for line in out.splitlines()]
            for match in filter(None, lines):
                assert match["code"] == "200", out
                callback = Callback(match["channel"], match["sid"], match["status"], match["seq"] or "")
                sent.append((callback, bool(match["repeat"])))
            assert "every one answered 2xx" in out
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(DEADLINE)
    return sent


def lifecycle_app(tmp_path: Path, delivery: str, ordering: str | None) -> tuple[TwilioEvents, list[Callback]]:
    """An app whose handlers record every callback they run."""
    store = sqlite_url(tmp_path) if delivery == "durable" else None
    app = TwilioEvents(
        auth_token=TOKEN,
        delivery=delivery,  # type: ignore[arg-type]
        store=store,
        ordering=ordering,  # type: ignore[arg-type]
        shutdown_grace=GRACE,
    )
    handled: list[Callback] = []

    @app.call.on_any
    async def call(event: CallEvent) -> None:
        handled.append(Callback("call", event.call_sid, str(event.status), str(event.sequence_number)))
        await asyncio.sleep(0.02)  # long enough for workers to overlap

    @app.sms.on_any
    async def sms(event: SmsEvent) -> None:
        handled.append(Callback("sms", event.message_sid, str(event.status), ""))
        await asyncio.sleep(0.02)  # long enough for workers to overlap

    return app, handled


def wait_until_idle(server: LiveServer) -> None:
    """Durable: nothing queued or running any more. Inline: every handler ran before its answer."""

    def idle() -> bool:
        body = health(server)[1]
        return body["delivery"] == "inline" or body["queued"] + body["running"] == 0

    wait_for(idle, "the workers to finish")


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_monotonic_ordering_runs_each_callback_at_most_once_and_never_goes_back(
    tmp_path: Path, delivery: str
) -> None:
    app, handled = lifecycle_app(tmp_path, delivery, "monotonic")
    with running(app, lifespan="on") as server:
        sent = simulate_lifecycles(server.url("/"))
        wait_until_idle(server)
        handled_now = list(handled)

    assert any(repeat for _, repeat in sent)  # the command did send copies...
    assert any(  # ...and out of order
        later.sid == earlier.sid and later.rank < earlier.rank
        for i, (earlier, _) in enumerate(sent)
        for later, _ in sent[i + 1 :]
    )
    distinct = {callback for callback, _ in sent}
    assert len(handled_now) == len(set(handled_now))  # at most once each
    assert set(handled_now) <= distinct
    by_sid: dict[str, list[Callback]] = {}
    for callback in handled_now:
        by_sid.setdefault(callback.sid, []).append(callback)
    for sid, callbacks in by_sid.items():
        ranks = [callback.rank for callback in callbacks]
        assert ranks == sorted(set(ranks)), f"{sid} went back: {[c.status for c in callbacks]}"
        assert all(not callback.final for callback in callbacks[:-1]), f"{sid} ran after a final status"
    for callback in distinct:  # a lifecycle's last status is always run: nothing can come after it
        if callback.final:
            assert callback in handled_now
    if delivery == "inline":
        # one request after the other for each SID: run exactly when further than the furthest so far
        expected: dict[str, list[Callback]] = {}
        for callback, _ in sent:
            before = expected.setdefault(callback.sid, [])
            furthest = before[-1] if before else None
            if callback in before or (furthest and (furthest.final or callback.rank <= furthest.rank)):
                continue
            before.append(callback)
        assert by_sid == expected


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_without_ordering_every_distinct_callback_runs_exactly_once(tmp_path: Path, delivery: str) -> None:
    app, handled = lifecycle_app(tmp_path, delivery, None)
    with running(app, lifespan="on") as server:
        sent = simulate_lifecycles(server.url("/"))
        distinct = {callback for callback, _ in sent}
        wait_for(lambda: set(handled) >= distinct, "every distinct callback to be handled")
        wait_until_idle(server)
        handled_now = list(handled)

    assert len(sent) > len(distinct)  # copies were sent
    assert sorted(handled_now, key=repr) == sorted(distinct, key=repr)


# Shutting down on SIGTERM (app.run in a process of its own)


def test_sigterm_lets_a_running_durable_handler_finish_within_the_grace(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    service = app_process({"DURABLE_APP_SHUTDOWN_GRACE": "20"}).start()
    payload = call_payload("ringing", Sleep="1.5")
    key = f"call:{payload['CallSid']}:ringing:0"
    assert send_all([signed_request(payload)], [service.port], concurrency=1) == [200]
    wait_for(lambda: counts(service.records(), "start")[key] == 1, "the handler to start")

    service.terminate()
    assert service.wait(DEADLINE) == 0

    assert [(r.what, r.key) for r in service.records()] == [("start", key), ("done", key)]
    assert "cancelled" not in service.stderr
    stats, dead = store_contents(tmp_path / "events.db")
    assert (stats.queued, stats.running, stats.dead, dead) == (0, 0, 0, [])  # completed: nothing to redo


def test_sigterm_leaves_a_handler_slower_than_the_grace_for_the_next_start(
    tmp_path: Path, app_process: Callable[..., AppProcess]
) -> None:
    service = app_process({"DURABLE_APP_SHUTDOWN_GRACE": "0.5"}).start()
    payload = call_payload("ringing", Block="1")
    key = f"call:{payload['CallSid']}:ringing:0"
    assert send_all([signed_request(payload)], [service.port], concurrency=1) == [200]
    wait_for(lambda: counts(service.records(), "start")[key] == 1, "the handler to start")

    service.terminate()
    assert service.wait(DEADLINE) == 0

    assert "1 handler(s) still running after" in service.stderr
    assert counts(service.records(), "done")[key] == 0
    stats, _ = store_contents(tmp_path / "events.db")
    assert stats.queued + stats.running == 1  # still stored, for the next start

    service.log.with_name(service.log.name + ".gate").touch()
    service.start()
    wait_for(lambda: counts(service.records(), "done")[key] == 1, "the event to run at the next start")
    wait_for(lambda: service.health()["queued"] + service.health()["running"] == 0, "an empty queue")
    assert counts(service.records(), "start")[key] == 2


def test_a_durable_app_started_again_in_a_new_event_loop_still_runs_its_handlers(tmp_path: Path) -> None:
    # e.g. two TestClient blocks, or one event loop per test, around one app
    app = TwilioEvents(auth_token=TOKEN, delivery="durable", store=sqlite_url(tmp_path), workers=2)
    handled: list[str] = []

    @app.call.on_completed
    async def completed(event: CallEvent) -> None:
        handled.append(event.call_sid)

    async def one_life(sid: str) -> None:
        async with app.lifespan():
            assert await app.store.enqueue(f"call:{sid}:completed:", "call", [
                ("CallSid", sid), ("CallStatus", "completed")
            ], 60.0)  # fmt: skip
            app._dispatcher._durable._workers.notify()  # type: ignore[union-attr]
            for _ in range(300):
                if sid in handled:
                    return
                await asyncio.sleep(0.01)

    asyncio.run(one_life("CA1"))
    asyncio.run(one_life("CA2"))

    assert handled == ["CA1", "CA2"]


def test_a_worker_that_lost_its_lease_drops_its_outcome_and_leaves_the_event_to_its_new_holder(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=TOKEN, delivery="durable", store=sqlite_url(tmp_path), lease=0.3)
    started = threading.Event()
    taken: list[str] = []

    @app.call.on_completed
    async def completed(event: CallEvent) -> None:
        started.set()
        time.sleep(2.0)  # a stuck handler: it blocks the event loop, and with it the heartbeat

    async def take_over() -> list[str]:
        """Another process: it claims the event once the stuck one's lease has run out."""
        started.wait(DEADLINE)
        other = SqliteStore(tmp_path / "events.db")
        await other.open(recover=False)
        try:
            for _ in range(200):
                if claimed := await other.claim("elsewhere", 1, 60.0):
                    return [event.key for event in claimed]
                await asyncio.sleep(0.05)
            return []
        finally:
            await other.close()

    async def life() -> None:
        thief = threading.Thread(target=lambda: taken.extend(asyncio.run(take_over())))
        thief.start()
        async with app.lifespan():
            await app.store.enqueue("k1", "call", [("CallSid", "CA1"), ("CallStatus", "completed")], 60.0)
            await asyncio.to_thread(thief.join, DEADLINE)
            for _ in range(300):
                if "outcome of k1 dropped" in caplog.text:
                    break
                await asyncio.sleep(0.01)

    with caplog.at_level(logging.WARNING, logger="twilio_events"):
        asyncio.run(life())
    assert taken == ["k1"]
    assert "outcome of k1 dropped" in caplog.text
    stats, dead = store_contents(tmp_path / "events.db")
    assert (stats.queued, stats.running, dead) == (0, 1, [])  # still the other holder's, not handled

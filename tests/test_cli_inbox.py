"""`twilio-events inbox`: the real console script, in subprocesses, on the store of a real durable service.

The service is a TwilioEvents app with durable delivery on a real uvicorn server on 127.0.0.1, sent signed
callbacks; its handler fails (so each event becomes a dead letter after its one attempt) until a file
exists, which lets a dead letter queued again by `inbox retry` succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from twilio_events import CallEvent, TwilioEvents
from twilio_events.payloads import call_payload

from .conftest import DEADLINE, TOKEN, LiveServer, assert_one_line_error, free_port, running, wait_for
from .delivery_support import (
    AppProcess,
    app_processes,
    redis_server,
    send_all,
    signed_request,
)
from .delivery_support import (
    counts as records_of,
)

SCRIPT = Path(sys.executable).with_name("twilio-events")


def inbox(
    *args: str, env_store: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """`twilio-events inbox ARGS` with a clean Twilio environment (TWILIO_EVENTS_STORE=env_store if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    if env_store is not None:
        env["TWILIO_EVENTS_STORE"] = env_store
    return subprocess.run(
        [str(SCRIPT), "inbox", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=DEADLINE * 2
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == "", result.stderr
    return result.stdout


def counts(store: str) -> dict[str, int]:
    """`inbox stats` as {"queued": n, "running": n, "dead": n}."""
    found = re.findall(r"^(queued|running|dead) +(\d+)", ok(inbox("--store", store, "stats")), re.MULTILINE)
    return {name: int(value) for name, value in found}


def dead_letters(store: str, *args: str) -> list[dict[str, str]]:
    """`inbox list --dead` as one dict per row, keyed by the table's header."""
    table = ok(inbox("list", "--dead", "--store", store, *args)).partition("\n\n")[0]  # then tracebacks
    lines = table.splitlines()
    header = re.split(r" {2,}", lines[0])
    rows = [line for line in lines[1:] if line and not line.startswith("(")]
    return [dict(zip(header, re.split(r" {2,}", row), strict=True)) for row in rows]


def sid(digit: str) -> str:
    return "CA" + digit * 32


class Service:
    """A durable app whose ringing handler logs each attempt and fails until `succeed` exists."""

    def __init__(self, tmp_path: Path, store: str) -> None:
        self.store = store
        self.log = tmp_path / "attempts.log"
        self.succeed = tmp_path / "succeed"
        # one worker: the events run, and become dead letters, in the order they arrive
        self.app = TwilioEvents(auth_token=TOKEN, delivery="durable", store=store, max_attempts=1, workers=1)

        @self.app.call.on_ringing
        async def ringing(event: CallEvent) -> None:
            with self.log.open("a", encoding="utf-8") as log:
                log.write(f"attempt {event.call_sid}\n")
                if not self.succeed.exists():
                    raise RuntimeError(f"no luck for {event.call_sid}")
                log.write(f"handled {event.call_sid}\n")

    def lines(self) -> list[str]:
        return self.log.read_text(encoding="utf-8").splitlines() if self.log.exists() else []

    def send(self, server: LiveServer, *digits: str) -> None:
        for digit in digits:
            response = server.callback(call_payload("ringing", CallSid=sid(digit)))
            assert response.status_code == 200, response.text

    def wait_for_counts(self, queued: int, running: int, dead: int) -> None:
        expected = {"queued": queued, "running": running, "dead": dead}
        wait_for(lambda: counts(self.store) == expected, f"the store to hold {expected}")


def test_stats_list_retry_and_purge_on_a_sqlite_store(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    service = Service(tmp_path, store)
    with running(service.app, lifespan="on") as server:
        service.send(server, "1", "2", "3")
        service.wait_for_counts(queued=0, running=0, dead=3)

        listed = dead_letters(store)
        assert [row["KEY"].split(":")[1] for row in listed] == [sid("1"), sid("2"), sid("3")]
        for row in listed:
            assert (row["CHANNEL"], row["ATTEMPTS"]) == ("call", "1")
            assert row["LAST ERROR"] == f"RuntimeError: no luck for {row['KEY'].split(':')[1]}"
            datetime.strptime(row["RECEIVED (UTC)"], "%Y-%m-%d %H:%M:%S")  # a readable time
        assert len({row["ID"] for row in listed}) == 3
        limited = ok(inbox("--store", store, "list", "--dead", "--limit", "1"))
        assert sid("1") in limited and sid("2") not in limited
        assert "the oldest 1 of 3 dead letters" in limited

        # one dead letter queued again runs again, and succeeds this time
        service.succeed.touch()
        first = listed[0]["ID"]
        assert ok(inbox("--store", store, "retry", first)) == f"queued dead letter {first} again\n"
        wait_for(lambda: f"handled {sid('1')}" in service.lines(), "the retried event to be handled")
        service.wait_for_counts(queued=0, running=0, dead=2)
        assert_one_line_error(inbox("--store", store, "retry", first), f"no dead letter with ID '{first}'")

        # all of them, with the store from the environment: they fail again and are dead letters again
        service.succeed.unlink()
        assert ok(inbox("retry", "--all-dead", env_store=store)) == "queued 2 dead letters again\n"
        wait_for(lambda: service.lines().count(f"attempt {sid('3')}") == 2, "the retried events to run")
        service.wait_for_counts(queued=0, running=0, dead=2)
        again = dead_letters(store)
        assert [row["ID"] for row in again] == [row["ID"] for row in listed[1:]]
        assert [row["ATTEMPTS"] for row in again] == ["1", "1"]  # the attempts start again from 0

        assert_one_line_error(inbox("--store", store, "purge"), "--dead")
        assert counts(store)["dead"] == 2
        assert ok(inbox("purge", "--dead", "--store", store)) == "deleted 2 dead letters\n"
        assert ok(inbox("purge", "--dead", env_store=store)) == "no dead letters to delete\n"
        assert ok(inbox("list", "--dead", env_store=store)) == "no dead letters\n"
        assert ok(inbox("retry", "--all-dead", env_store=store)) == "no dead letters to queue again\n"

    assert service.lines() == [
        *(f"attempt {sid(digit)}" for digit in "123"),
        f"attempt {sid('1')}",
        f"handled {sid('1')}",
        *(f"attempt {sid(digit)}" for digit in "23"),
    ]


def test_the_option_given_beats_the_environment(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    service = Service(tmp_path, store)
    with running(service.app, lifespan="on") as server:
        service.send(server, "4")
        service.wait_for_counts(queued=0, running=0, dead=1)

    assert counts(store) == {"queued": 0, "running": 0, "dead": 1}
    elsewhere = f"sqlite:///{tmp_path / 'missing.db'}"
    stats = ok(inbox("--store", store, "stats", env_store=elsewhere))
    assert "dead     1" in stats and "events.db" in stats
    # a relative path is taken from the current directory
    assert "dead     1" in ok(inbox("stats", "--store", "sqlite:///events.db", cwd=tmp_path))


def test_stats_beside_a_running_service_leave_its_running_event_alone(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    started, release = tmp_path / "started", tmp_path / "release"
    app = TwilioEvents(auth_token=TOKEN, delivery="durable", store=store, workers=2, shutdown_grace=DEADLINE)

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        with started.open("a", encoding="utf-8") as log:
            log.write(f"{event.call_sid}\n")
        async with asyncio.timeout(DEADLINE):
            while not release.exists():
                await asyncio.sleep(0.01)

    with running(app, lifespan="on") as server:
        try:
            assert server.callback(call_payload("ringing", CallSid=sid("8"))).status_code == 200
            wait_for(started.exists, "the handler to start")

            # the event stays the running worker's: not ready again for the other worker to run it twice
            assert counts(store) == {"queued": 0, "running": 1, "dead": 0}
            assert counts(store) == {"queued": 0, "running": 1, "dead": 0}
        finally:
            release.touch()
        wait_for(lambda: counts(store) == {"queued": 0, "running": 0, "dead": 0}, "the event to be handled")

    assert started.read_text(encoding="utf-8").splitlines() == [sid("8")]


def test_list_dead_shows_the_end_of_each_traceback_and_verbose_all_of_it(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    service = Service(tmp_path, store)
    with running(service.app, lifespan="on") as server:
        service.send(server, "7")
        service.wait_for_counts(queued=0, running=0, dead=1)

    (row,) = dead_letters(store)
    assert row["LAST ERROR"] == f"RuntimeError: no luck for {sid('7')}"  # the error itself in the table
    short = ok(inbox("--store", store, "list", "--dead")).partition("\n\n")[2]
    whole = ok(inbox("--store", store, "list", "--dead", "--verbose")).partition("\n\n")[2]
    assert short.startswith(f"dead letter {row['ID']} ({row['KEY']}), its last 6 lines (--verbose: all):\n")
    assert whole.startswith(f"dead letter {row['ID']} ({row['KEY']}):\n")
    for text in (short, whole):  # the handler's own line and the error, where it was raised
        assert 'raise RuntimeError(f"no luck for {event.call_sid}")' in text
        assert text.rstrip().endswith(f"  RuntimeError: no luck for {sid('7')}")
    assert "Traceback (most recent call last):" not in short
    assert "  Traceback (most recent call last):\n" in whole
    assert len(whole.splitlines()) > len(short.splitlines()) == 7


def consumers(store: str) -> dict[str, tuple[int, int]]:
    """`inbox stats`'s consumer table as {name: (running, lease expiries)}."""
    lines = ok(inbox("--store", store, "stats")).partition("CONSUMER")[2].splitlines()[1:]
    return {name: (int(running), int(expired)) for name, running, expired in map(str.split, lines)}


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_per_consumer_stats_and_a_dead_consumers_events_listed_and_released(
    tmp_path: Path, kind: str
) -> None:
    with contextlib.ExitStack() as stack:
        if kind == "redis":
            store = stack.enter_context(redis_server(tmp_path / "redis")).url
        else:
            store = f"sqlite:///{tmp_path / 'events.db'}"
        make = stack.enter_context(app_processes(tmp_path))
        tag = uuid.uuid4().hex[:8]

        def instance(name: str, lease: str) -> AppProcess:
            env = {
                "DURABLE_APP_STORE": store,
                "DURABLE_APP_CONSUMER": f"{name}-{tag}",
                "DURABLE_APP_LEASE": lease,
            }
            return make(env, name=name)

        def block(process: AppProcess, how_many: int) -> list[str]:
            """Send `how_many` callbacks that block in `process`'s handler; their keys once all started."""
            payloads = [call_payload("ringing", Block="1") for _ in range(how_many)]
            keys = [f"call:{p['CallSid']}:ringing:0" for p in payloads]
            assert (
                send_all([signed_request(p) for p in payloads], [process.port], concurrency=2)
                == [200] * how_many
            )
            wait_for(
                lambda: set(records_of(process.records(), "start")) >= set(keys), "the handlers to start"
            )
            return keys

        # "gone" holds two events under the default lease (30 s) and is killed
        gone = instance("gone", "30").start()
        held = block(gone, 2)
        gone.kill()
        # "stuck" holds one under a lease of 1 s and is killed: another instance takes it over in a second
        stuck = instance("stuck", "1").start()
        (taken_over,) = block(stuck, 1)
        stuck.kill()
        gone_name, stuck_name = f"gone-{tag}:1", f"stuck-{tag}:1"
        assert consumers(store) == {gone_name: (2, 0), stuck_name: (1, 0)}
        assert "oldest waiting  none" in ok(inbox("--store", store, "stats"))

        listed = ok(inbox("--store", store, "list", "--held-by", gone_name))
        assert listed.splitlines()[0].split() == ["ID", "KEY", "CHANNEL", "ATTEMPTS", "RECEIVED", "(UTC)"]
        assert sorted(line.split()[1] for line in listed.splitlines()[1:]) == sorted(held)
        assert ok(inbox("--store", store, "list", "--held-by", "nobody")) == "nobody holds no events\n"

        released = ok(inbox("--store", store, "release", gone_name))
        assert released == f"released 2 events held by {gone_name}: ready to run again\n"
        assert ok(inbox("--store", store, "release", gone_name)) == f"{gone_name} holds no events\n"

        rescuer = instance("rescuer", "30")
        rescuer.log.with_name(rescuer.log.name + ".gate").touch()
        started = time.monotonic()
        rescuer.start()
        wait_for(
            lambda: set(records_of(rescuer.records(), "done")) >= set(held), "the released events to run"
        )
        assert time.monotonic() - started < 20  # at once, not after gone's 30 s leases
        wait_for(
            lambda: taken_over in records_of(rescuer.records(), "done"), "the stuck event to be taken over"
        )
        wait_for(lambda: consumers(store).get(stuck_name) == (0, 1), "the lease expiry to be counted")
        assert consumers(store).get(gone_name, (0, 0)) == (0, 0)  # released: nothing held, none expired
        health = rescuer.health()
        assert health["consumers"][stuck_name] == {"running": 0, "lease_expiries": 1}


# A real redis-server


@pytest.fixture
def redis_url(tmp_path: Path) -> Iterator[str]:
    with redis_server(tmp_path / "redis") as server:
        yield server.url


def test_a_redis_store(tmp_path: Path, redis_url: str) -> None:
    service = Service(tmp_path, redis_url)
    with running(service.app, lifespan="on") as server:
        service.send(server, "5", "6")
        service.wait_for_counts(queued=0, running=0, dead=2)
        listed = dead_letters(redis_url)
        assert [(row["KEY"].split(":")[1], row["ATTEMPTS"]) for row in listed] == [
            (sid("5"), "1"),
            (sid("6"), "1"),
        ]
        assert listed[0]["LAST ERROR"] == f"RuntimeError: no luck for {sid('5')}"

        service.succeed.touch()
        first = listed[0]["ID"]
        assert ok(inbox("retry", first, env_store=redis_url)) == f"queued dead letter {first} again\n"
        wait_for(lambda: f"handled {sid('5')}" in service.lines(), "the retried event to be handled")
        service.wait_for_counts(queued=0, running=0, dead=1)
        assert ok(inbox("purge", "--dead", env_store=redis_url)) == "deleted 1 dead letter\n"
        assert counts(redis_url) == {"queued": 0, "running": 0, "dead": 0}


# Errors: one line, exit code 1


def test_an_unreachable_redis_is_one_clear_line() -> None:
    port = free_port()  # nothing listens there

    result = inbox("--store", f"redis://127.0.0.1:{port}/0", "stats")

    assert_one_line_error(result, "the store is unavailable", f"127.0.0.1:{port}")


@pytest.mark.parametrize(
    ("store", "expected"),
    [
        (None, "TWILIO_EVENTS_STORE"),
        ("sqlite:///missing.db", "no such store file: missing.db"),
        ("sqlite:///", "needs the path"),
        ("sqlite:///not-a-database.db", "cannot read it as a SQLite database"),
        ("sqlite:///other.db", "not a twilio_events store"),
        ("postgres://127.0.0.1/events", "unknown store URL 'postgres://127.0.0.1/events'"),
        ("memory://", "nothing to look at"),
        ("redis://127.0.0.1:port/0", "invalid Redis URL"),
    ],
)
def test_a_store_that_cannot_be_used_is_one_clear_line(
    tmp_path: Path, store: str | None, expected: str
) -> None:
    (tmp_path / "not-a-database.db").write_text("hello\n", encoding="utf-8")
    with contextlib.closing(sqlite3.connect(tmp_path / "other.db")) as conn:
        conn.execute("CREATE TABLE notes (text TEXT)")

    result = inbox("stats", *(["--store", store] if store else []), cwd=tmp_path)

    assert_one_line_error(result, expected)
    assert not (tmp_path / "missing.db").exists()  # nothing is created where no store was


def test_wrong_arguments_are_one_clear_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    with running(Service(tmp_path, store).app, lifespan="on"):
        pass  # creates the store

    assert_one_line_error(inbox("--store", store, "list"), "--dead")
    assert_one_line_error(inbox("--store", store, "retry"), "--all-dead")
    assert_one_line_error(inbox("--store", store, "retry", "7", "--all-dead"), "--all-dead")
    assert_one_line_error(inbox("--store", store, "retry", "7"), "no dead letter with ID '7'")
    assert_one_line_error(inbox("--store", store, "list", "--dead", "--limit", "0"), "--limit")


def test_help_documents_the_store_and_its_environment_variable() -> None:
    result = inbox("--help")

    assert result.returncode == 0
    for text in ("--store", "TWILIO_EVENTS_STORE", "sqlite:///", "redis://", "examples:"):
        assert text in result.stdout
    for action in ("stats", "list", "retry", "purge"):
        assert action in result.stdout
        assert "TWILIO_EVENTS_STORE" in ok(inbox(action, "--help"))
    assert (
        "inbox"
        in subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=DEADLINE).stdout
    )

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
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from twilio_events import CallEvent, TwilioEvents
from twilio_events.payloads import call_payload

from .conftest import DEADLINE, TOKEN, LiveServer, assert_one_line_error, free_port, running, wait_for
from .delivery_support import redis_server

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
    lines = ok(inbox("list", "--dead", "--store", store, *args)).splitlines()
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

"""The Store contract, for MemoryStore, SqliteStore and RedisStore (over a real redis-server)."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from twilio_events.stores import (
    LeaseLost,
    MemoryStore,
    StatusMark,
    Store,
    StoredEvent,
    StoreUnavailable,
    memory,
    open_store,
)
from twilio_events.stores.redis import RedisStore
from twilio_events.stores.sqlite import SqliteStore

from .conftest import DEADLINE, free_port
from .delivery_support import RedisServer

pytestmark = pytest.mark.anyio

WINDOW = 3600.0
SHORT = 0.2
"""A lease, delay or window the tests wait out."""

PARAMS = [("CallSid", "CA1"), ("CallStatus", "ringing"), ("Tag", "a"), ("Tag", "b"), ("To", "Zoë")]

Factory = Callable[[], Store]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# A real redis-server


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


# Stores


def factory(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    """A factory of stores that share what they keep, for the kind of store the test is run with."""
    if request.param == "memory":
        store = MemoryStore()
        return lambda: store
    if request.param == "sqlite":
        return lambda: SqliteStore(tmp_path / "events.db")
    server: RedisServer = request.getfixturevalue("redis_server")
    prefix = f"test-{uuid.uuid4().hex}"
    return lambda: RedisStore(server.url, prefix=prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    return factory(request, tmp_path)


@pytest.fixture(params=["sqlite", "redis"])
def make_durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Factory:
    return factory(request, tmp_path)


@pytest.fixture
async def store(make_store: Factory) -> AsyncIterator[Store]:
    opened = make_store()
    await opened.open()
    yield opened
    await opened.close()


async def add(store: Store, *keys: str) -> None:
    for key in keys:
        assert await store.enqueue(key, "call", [("Key", key)], WINDOW)


async def claim_one(store: Store, consumer: str = "worker", hold: float = WINDOW) -> StoredEvent:
    (event,) = await store.claim(consumer, 1, hold)
    return event


async def counts(store: Store) -> tuple[int, int, int]:
    stats = await store.stats()
    return stats.queued, stats.running, stats.dead


# enqueue and claim


async def test_an_enqueued_event_is_claimed_as_it_was_given(store: Store) -> None:
    before = time.time()
    assert await store.enqueue("k1", "sms", PARAMS, WINDOW)
    (event,) = await store.claim("worker", 10, WINDOW)
    assert (event.key, event.channel, event.params) == ("k1", "sms", PARAMS)
    assert (event.attempts, event.last_error) == (0, None)
    assert before - 1 <= event.received_at <= time.time() + 1
    await store.ping()


async def test_enqueue_refuses_a_key_queued_running_or_handled(store: Store) -> None:
    await add(store, "k1")
    assert not await store.enqueue("k1", "call", PARAMS, WINDOW)  # queued
    event = await claim_one(store)
    assert not await store.enqueue("k1", "call", PARAMS, WINDOW)  # running
    assert not await store.is_handled("k1")
    await store.complete(event, WINDOW)
    assert await store.is_handled("k1")
    assert not await store.enqueue("k1", "call", PARAMS, WINDOW)  # handled
    assert await counts(store) == (0, 0, 0)
    assert await store.claim("worker", 10, WINDOW) == []


async def test_a_handled_key_is_accepted_again_after_the_window(store: Store) -> None:
    await add(store, "k1")
    await store.complete(await claim_one(store), SHORT)
    assert not await store.enqueue("k1", "call", PARAMS, WINDOW)
    await asyncio.sleep(SHORT * 1.5)
    assert not await store.is_handled("k1")
    assert await store.enqueue("k1", "call", PARAMS, WINDOW)


async def test_mark_handled_is_remembered_for_its_window(store: Store) -> None:
    await store.mark_handled("long", WINDOW)
    await store.mark_handled("short", SHORT)
    assert await store.is_handled("long")
    assert await store.is_handled("short")
    assert not await store.is_handled("other")
    assert not await store.enqueue("long", "call", PARAMS, WINDOW)
    await asyncio.sleep(SHORT * 1.5)
    assert not await store.is_handled("short")
    assert await store.is_handled("long")


async def test_concurrent_enqueues_of_one_key_store_it_once(store: Store) -> None:
    added = await asyncio.gather(*(store.enqueue("k1", "call", PARAMS, WINDOW) for _ in range(20)))
    assert added.count(True) == 1
    assert await counts(store) == (1, 0, 0)


async def test_claim_takes_the_oldest_up_to_its_limit_and_holds_them(store: Store) -> None:
    await add(store, "k0", "k1", "k2", "k3", "k4")
    first = await store.claim("a", 2, WINDOW)
    assert [e.key for e in first] == ["k0", "k1"]
    assert await counts(store) == (3, 2, 0)
    rest = await store.claim("b", 10, WINDOW)
    assert [e.key for e in rest] == ["k2", "k3", "k4"]
    assert await store.claim("c", 10, WINDOW) == []
    assert await store.claim("c", 0, WINDOW) == []
    assert await counts(store) == (0, 5, 0)


async def test_concurrent_claims_never_take_one_event_twice(store: Store) -> None:
    keys = [f"k{i}" for i in range(30)]
    await add(store, *keys)
    batches = await asyncio.gather(*(store.claim(f"c{i}", 3, WINDOW) for i in range(15)))
    claimed = [event for batch in batches for event in batch]
    assert sorted(e.key for e in claimed) == sorted(keys)
    assert len({e.id for e in claimed}) == len(keys)


async def test_an_event_whose_lease_ran_out_is_taken_over_and_its_old_holder_cannot_finish_it(
    store: Store,
) -> None:
    await add(store, "k1")
    held = await claim_one(store, "first", SHORT)
    assert held.holder == "first"
    assert await store.claim("second", 1, SHORT) == []
    await asyncio.sleep(SHORT * 1.5)
    taken = await claim_one(store, "second", WINDOW)
    assert (taken.id, taken.key, taken.attempts, taken.holder) == (held.id, "k1", 0, "second")
    assert taken.lease != held.lease
    assert await store.claim("first", 1, SHORT) == []
    assert await store.extend_leases("first", [held], WINDOW) == [held.id]
    for finish in (
        store.complete(held, WINDOW),
        store.retry_later(held, "boom", 0),
        store.dead_letter(held, "fatal"),
    ):
        with pytest.raises(LeaseLost):
            await finish
    assert await counts(store) == (0, 1, 0)  # nothing the old holder did was recorded
    assert not await store.is_handled("k1")
    await store.complete(taken, WINDOW)
    assert await counts(store) == (0, 0, 0)
    assert await store.is_handled("k1")


async def test_extending_the_lease_keeps_an_event_held_past_its_first_lease(store: Store) -> None:
    lease = 3 * SHORT  # room for a busy machine's pauses between two extensions
    await add(store, "k1", "k2")
    held = await store.claim("worker", 2, lease)
    for _ in range(8):  # twice the first lease, extended every quarter of it
        await asyncio.sleep(lease / 4)
        assert await store.extend_leases("worker", held, lease) == []
        assert await store.claim("other", 10, lease) == []
    assert await counts(store) == (0, 2, 0)
    for event in held:
        await store.complete(event, WINDOW)
    assert await store.extend_leases("worker", held, lease) == [e.id for e in held]  # finished: not held
    assert await store.extend_leases("worker", [], SHORT) == []


async def test_only_the_claim_that_holds_an_event_can_finish_it(store: Store) -> None:
    await add(store, "k1")
    event = await claim_one(store, "worker")
    ringing = ("CA1", StatusMark("ringing", (1, 0), final=False))
    impostors = [replace(event, holder="other"), replace(event, lease=event.lease + 1)]
    for impostor in impostors:
        with pytest.raises(LeaseLost):
            await store.complete(impostor, WINDOW, ringing)
        with pytest.raises(LeaseLost):
            await store.retry_later(impostor, "boom", 0)
        with pytest.raises(LeaseLost):
            await store.dead_letter(impostor, "fatal")
        assert await store.extend_leases(impostor.holder or "", [impostor], WINDOW) == [event.id]
    assert await counts(store) == (0, 1, 0)
    assert not await store.is_handled("k1")
    assert await store.last_status("CA1") is None
    await store.complete(event, WINDOW, ringing)  # the holder's completion records its status with it
    assert await store.is_handled("k1")
    assert await store.last_status("CA1") == ringing[1]
    with pytest.raises(LeaseLost):  # and only once
        await store.complete(event, WINDOW)


async def test_concurrent_completions_each_get_their_own_outcome(store: Store) -> None:
    keys = [f"k{i}" for i in range(20)]
    await add(store, *keys)
    events = await store.claim("worker", 20, WINDOW)
    finishing = [
        store.complete(event if i % 2 else replace(event, lease=event.lease + 1), WINDOW)
        for i, event in enumerate(events)
    ]
    outcomes = await asyncio.gather(*finishing, return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["LeaseLost", "NoneType"] * 10
    assert [await store.is_handled(e.key) for e in events] == [False, True] * 10
    assert await counts(store) == (0, 10, 0)


# retries and dead letters


async def test_retry_later_waits_its_delay_and_keeps_the_attempt_and_error(store: Store) -> None:
    await add(store, "k1")
    event = await claim_one(store)
    await store.retry_later(event, "boom", SHORT)
    assert await store.claim("worker", 1, WINDOW) == []
    assert await counts(store) == (1, 0, 0)
    assert not await store.enqueue("k1", "call", PARAMS, WINDOW)
    await asyncio.sleep(SHORT * 1.5)
    again = await claim_one(store)
    assert (again.id, again.key, again.params) == (event.id, "k1", event.params)
    assert (again.attempts, again.last_error) == (1, "boom")
    await store.retry_later(again, "bang", 0)
    third = await claim_one(store)
    assert (third.id, third.attempts, third.last_error) == (event.id, 2, "bang")


async def test_a_dead_letter_keeps_its_last_error_and_is_not_claimed(store: Store) -> None:
    await add(store, "k1")
    await store.retry_later(await claim_one(store), "boom", 0)
    await store.dead_letter(await claim_one(store), "fatal")
    (dead,) = await store.dead_letters()
    assert (dead.key, dead.params, dead.attempts, dead.last_error) == ("k1", [("Key", "k1")], 2, "fatal")
    assert await counts(store) == (0, 0, 1)
    assert await store.claim("worker", 10, WINDOW) == []
    assert not await store.is_handled("k1")


async def test_dead_letters_come_oldest_first_up_to_the_limit(store: Store) -> None:
    await add(store, "k0", "k1", "k2")
    k0, k1, k2 = await store.claim("worker", 3, WINDOW)
    for event in (k2, k0, k1):
        await store.dead_letter(event, f"failed {event.key}")
    assert [e.key for e in await store.dead_letters()] == ["k2", "k0", "k1"]
    assert [e.key for e in await store.dead_letters(limit=2)] == ["k2", "k0"]


async def test_retry_dead_queues_one_or_all_again_with_attempts_reset(store: Store) -> None:
    await add(store, "k0", "k1", "k2")
    for event in await store.claim("worker", 3, WINDOW):
        await store.dead_letter(event, "fatal")
    first = (await store.dead_letters())[0]
    assert await store.retry_dead("no-such-id") == 0
    assert await store.retry_dead(first.id) == 1
    assert await counts(store) == (1, 0, 2)
    again = await claim_one(store)
    assert (again.id, again.key, again.attempts) == (first.id, "k0", 0)
    assert await store.retry_dead() == 2
    assert await counts(store) == (2, 1, 0)
    assert sorted(e.key for e in await store.claim("worker", 10, WINDOW)) == ["k1", "k2"]
    assert await store.dead_letters() == []


async def test_a_dead_letters_key_may_arrive_again_and_then_it_stays_dead(store: Store) -> None:
    await add(store, "k1")
    await store.dead_letter(await claim_one(store), "fatal")
    assert await store.enqueue("k1", "call", PARAMS, WINDOW)  # a dead letter does not hold its key
    assert await store.retry_dead() == 0  # the newer event runs instead
    assert await counts(store) == (1, 0, 1)
    await store.complete(await claim_one(store), WINDOW)
    assert await store.retry_dead() == 1  # asked for explicitly: queued even though the key was handled


async def test_purge_dead_deletes_every_dead_letter(store: Store) -> None:
    await add(store, "k0", "k1", "k2")
    k0, k1, _ = await store.claim("worker", 3, WINDOW)
    await store.dead_letter(k0, "fatal")
    await store.dead_letter(k1, "fatal")
    assert await store.purge_dead() == 2
    assert await store.purge_dead() == 0
    assert await store.dead_letters() == []
    assert await store.retry_dead() == 0
    assert await counts(store) == (0, 1, 0)


async def test_stats_count_waiting_and_delayed_events_as_queued(store: Store) -> None:
    await add(store, "k0", "k1", "k2", "k3")
    k0, k1, _ = await store.claim("worker", 3, WINDOW)
    await store.retry_later(k0, "boom", WINDOW)
    await store.dead_letter(k1, "fatal")
    stats = await store.stats()
    assert (stats.queued, stats.running, stats.dead) == (2, 1, 1)


# status marks


async def test_advance_status_records_only_a_higher_position_until_a_final_one(store: Store) -> None:
    assert await store.last_status("CA1") is None
    ringing = StatusMark("ringing", (1, 0), final=False)
    await store.advance_status("CA1", ringing, WINDOW)
    assert await store.last_status("CA1") == ringing
    await store.advance_status("CA1", StatusMark("queued", (0, 5), final=False), WINDOW)
    await store.advance_status("CA1", StatusMark("other", (1, 0), final=False), WINDOW)
    assert await store.last_status("CA1") == ringing
    later = StatusMark("ringing", (1, 1), final=False)
    await store.advance_status("CA1", later, WINDOW)
    assert await store.last_status("CA1") == later
    completed = StatusMark("completed", (3, 0), final=True)
    await store.advance_status("CA1", completed, WINDOW)
    await store.advance_status("CA1", StatusMark("failed", (9, 9), final=True), WINDOW)
    assert await store.last_status("CA1") == completed
    assert await store.last_status("CA2") is None


async def test_a_status_mark_expires_after_its_window(store: Store) -> None:
    await store.advance_status("CA1", StatusMark("completed", (3, 0), final=True), SHORT)
    await asyncio.sleep(SHORT * 1.5)
    assert await store.last_status("CA1") is None
    ringing = StatusMark("ringing", (1, 0), final=False)
    await store.advance_status("CA1", ringing, WINDOW)
    assert await store.last_status("CA1") == ringing


async def test_concurrent_advances_keep_the_highest_position(store: Store) -> None:
    positions = [(rank, seq) for rank in range(4) for seq in range(5)]
    marks = [StatusMark(f"s{rank}.{seq}", (rank, seq), final=False) for rank, seq in reversed(positions)]
    await asyncio.gather(*(store.advance_status("CA1", mark, WINDOW) for mark in marks))
    assert await store.last_status("CA1") == StatusMark("s3.4", (3, 4), final=False)


# per-consumer operations


async def test_stats_count_running_events_per_consumer_and_the_oldest_waiting(store: Store) -> None:
    assert (await store.stats()).oldest_waiting is None
    before = time.time()
    await add(store, "k0", "k1", "k2", "k3")
    await store.claim("a", 2, WINDOW)
    await store.claim("b", 1, WINDOW)
    stats = await store.stats()
    assert stats.consumers == {"a": 2, "b": 1}
    assert stats.expiries == {}
    assert stats.oldest_waiting is not None and before - 1 <= stats.oldest_waiting <= time.time() + 1


async def test_a_lease_taken_over_is_counted_against_the_consumer_that_let_it_run_out(store: Store) -> None:
    await add(store, "k0", "k1", "k2")
    await store.claim("stuck", 2, SHORT)
    await store.claim("alive", 1, WINDOW)
    await asyncio.sleep(SHORT * 1.5)
    assert len(await store.claim("rescuer", 10, WINDOW)) == 2
    stats = await store.stats()
    assert stats.expiries == {"stuck": 2}
    assert stats.consumers == {"alive": 1, "rescuer": 2}


async def test_held_by_lists_what_one_consumer_holds_and_release_makes_it_ready_at_once(store: Store) -> None:
    await add(store, "k0", "k1", "k2", "k3")
    gone = await store.claim("gone", 3, WINDOW)
    await store.claim("alive", 1, WINDOW)
    held = await store.held_by("gone")
    assert [e.key for e in held] == ["k0", "k1", "k2"]
    assert [e.holder for e in held] == ["gone"] * 3
    assert [e.key for e in await store.held_by("gone", limit=2)] == ["k0", "k1"]
    assert await store.held_by("nobody") == []
    assert await store.release("gone") == 3
    assert await store.release("gone") == 0
    assert await store.held_by("gone") == []
    assert await counts(store) == (3, 1, 0)
    again = await store.claim("new", 10, WINDOW)  # at once: no lease to wait out
    assert sorted(e.key for e in again) == ["k0", "k1", "k2"]
    with pytest.raises(LeaseLost):  # the released holder cannot finish what it held
        await store.complete(gone[0], WINDOW)


async def test_retry_later_without_counting_puts_an_event_off_with_its_attempts_unchanged(
    store: Store,
) -> None:
    await add(store, "k1")
    await store.retry_later(await claim_one(store), "boom", 0)
    event = await claim_one(store)
    await store.retry_later(event, "boom", SHORT, count=False)
    assert await store.claim("worker", 1, WINDOW) == []
    await asyncio.sleep(SHORT * 1.5)
    again = await claim_one(store)
    assert (again.attempts, again.last_error) == (1, "boom")


# SID holds (ordering across processes)

RINGING = StatusMark("ringing", (2, 1), final=False)
COMPLETED = StatusMark("completed", (4, 3), final=True)


async def test_one_token_at_a_time_holds_a_sid_and_reads_its_furthest_status(store: Store) -> None:
    await store.advance_status("CA1", RINGING, WINDOW)
    first = await store.claim_sid("CA1", "t1", WINDOW)
    assert (first.held, first.previous) == (True, RINGING)
    assert (await store.claim_sid("CA1", "t2", WINDOW)).held is False
    again = await store.claim_sid("CA1", "t1", WINDOW)  # the holder itself may claim again
    assert (again.held, again.previous) == (True, RINGING)
    other = await store.claim_sid("CA2", "t2", WINDOW)  # SIDs are held apart
    assert (other.held, other.previous) == (True, None)


async def test_releasing_a_sid_records_its_mark_and_the_next_holder_reads_it(store: Store) -> None:
    assert (await store.claim_sid("CA1", "t1", WINDOW)).held
    await store.release_sid("CA1", "t2", None, WINDOW)  # not t2's: nothing changes
    assert not (await store.claim_sid("CA1", "t2", WINDOW)).held
    await store.release_sid("CA1", "t1", COMPLETED, WINDOW)
    assert await store.last_status("CA1") == COMPLETED
    taken = await store.claim_sid("CA1", "t2", WINDOW)
    assert (taken.held, taken.previous) == (True, COMPLETED)
    await store.release_sid("CA1", "t2", RINGING, WINDOW)  # a mark is only ever advanced
    assert await store.last_status("CA1") == COMPLETED


async def test_a_sid_hold_runs_out_unless_extended(store: Store) -> None:
    hold = 3 * SHORT
    assert (await store.claim_sid("CA1", "t1", hold)).held
    assert (await store.claim_sid("CA2", "t1", SHORT)).held
    for _ in range(6):  # twice the hold, extended every third of it
        await asyncio.sleep(hold / 3)
        assert await store.extend_sid("CA1", "t1", hold)
        assert not (await store.claim_sid("CA1", "t2", hold)).held
    await asyncio.sleep(SHORT * 1.5)
    assert (await store.claim_sid("CA2", "t2", WINDOW)).held  # its holder stopped extending it
    assert not await store.extend_sid("CA2", "t1", WINDOW)
    await store.release_sid("CA2", "t1", None, WINDOW)  # a lost hold's release leaves the new one alone
    assert not (await store.claim_sid("CA2", "t3", WINDOW)).held
    assert not await store.extend_sid("CA3", "t1", WINDOW)  # never held


async def test_concurrent_claims_of_one_sid_are_won_by_one(make_store: Factory) -> None:
    stores = [make_store() for _ in range(4)]
    for each in stores:
        await each.open()
    try:
        holds = await asyncio.gather(*(stores[i % 4].claim_sid("CA1", f"t{i}", WINDOW) for i in range(24)))
        assert sum(hold.held for hold in holds) == 1
    finally:
        for each in stores:
            await each.close()


# durability


async def test_events_outlive_the_store_and_running_ones_become_ready_again(
    make_durable_store: Factory,
) -> None:
    first = make_durable_store()
    await first.open()
    await add(first, "k0", "k1", "k2")
    await claim_one(first, "gone", SHORT)
    await first.dead_letter(await claim_one(first, "gone"), "fatal")
    await first.advance_status("CA1", StatusMark("ringing", (1, 0), final=False), WINDOW)
    await first.close()
    await asyncio.sleep(SHORT * 1.5)  # the lease of the event "gone" held runs out
    second = make_durable_store()
    await second.open()
    try:
        assert sorted(e.key for e in await second.claim("worker", 10, SHORT)) == ["k0", "k2"]
        assert [e.key for e in await second.dead_letters()] == ["k1"]
        assert await second.last_status("CA1") == StatusMark("ringing", (1, 0), final=False)
    finally:
        await second.close()


async def test_recovery_on_open_takes_back_only_its_own_and_expired_events(make_store: Factory) -> None:
    first = make_store()
    await first.open()
    await add(first, "own", "other", "expired", "waiting")
    await claim_one(first, "me", WINDOW)
    await claim_one(first, "someone-else", WINDOW)
    await claim_one(first, "gone", SHORT)
    await first.close()
    await asyncio.sleep(SHORT * 1.5)
    inspector = make_store()
    await inspector.open(recover=False, consumer="me")  # takes back nothing
    assert await counts(inspector) == (1, 3, 0)
    await inspector.close()
    restarted = make_store()
    await restarted.open(consumer="me")  # this process's identity: what it holds, a dead process left
    try:
        assert await counts(restarted) == (2, 2, 0)  # "own" is ready again; "expired" is, to any claim
        claimed = await restarted.claim("me", 10, WINDOW)
        assert sorted(e.key for e in claimed) == ["expired", "own", "waiting"]
        assert await counts(restarted) == (0, 4, 0)  # "other" stays with its live holder
    finally:
        await restarted.close()


async def test_a_closed_store_is_unavailable(make_durable_store: Factory) -> None:
    closed = make_durable_store()
    with pytest.raises(StoreUnavailable, match="not open"):
        await closed.ping()
    await closed.open()
    await closed.close()
    await closed.close()
    with pytest.raises(StoreUnavailable, match="not open"):
        await closed.enqueue("k1", "call", PARAMS, WINDOW)


# SQLite


async def test_sqlite_commits_concurrent_enqueues_together(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    await store.open()
    try:
        before = store.commits
        added = await asyncio.gather(*(store.enqueue(f"k{i}", "call", PARAMS, WINDOW) for i in range(64)))
        commits = store.commits - before
        assert all(added)
        assert 1 <= commits <= 8
        assert (await store.stats()).queued == 64
    finally:
        await store.close()


async def test_sqlite_opened_without_recovery_leaves_running_events_to_their_worker(tmp_path: Path) -> None:
    service = SqliteStore(tmp_path / "events.db")
    await service.open()
    try:
        await add(service, "k0")
        await claim_one(service, "busy")
        inspector = SqliteStore(tmp_path / "events.db")
        await inspector.open(recover=False)  # as `twilio-events inbox` does beside a running service
        try:
            assert (await inspector.stats()).running == 1
        finally:
            await inspector.close()
        assert (await service.stats()).running == 1
        assert await service.claim("other", 10, WINDOW) == []
    finally:
        await service.close()


async def test_sqlite_a_job_that_fails_alone_does_not_fail_its_batch(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "events.db")
    await store.open()
    try:
        too_far = StatusMark("ringing", (1, 10**30), final=False)  # more than SQLite's INTEGER holds
        outcomes = await asyncio.gather(
            *(store.enqueue(f"k{i}", "call", PARAMS, WINDOW) for i in range(8)),
            store.advance_status("CA1", too_far, WINDOW),
            *(store.enqueue(f"k{i}", "call", PARAMS, WINDOW) for i in range(8, 16)),
            return_exceptions=True,
        )
        assert [type(o).__name__ for o in outcomes].count("OverflowError") == 1
        assert [o for o in outcomes if not isinstance(o, BaseException)] == [True] * 16
        assert (await store.stats()).queued == 16
        assert await store.last_status("CA1") is None
    finally:
        await store.close()


ENQUEUE_THEN_WAIT = """
import asyncio, sys
from twilio_events.stores.sqlite import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    keys = [f"k{i}" for i in range(int(sys.argv[2]))]
    added = await asyncio.gather(*(store.enqueue(key, "call", [("Key", key)], 3600) for key in keys))
    print(sum(added), flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_sqlite_keeps_enqueued_events_when_the_process_is_killed(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ENQUEUE_THEN_WAIT, str(path), "40", stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        added = await asyncio.wait_for(child.stdout.readline(), DEADLINE)
    finally:
        child.send_signal(signal.SIGKILL)
        await asyncio.wait_for(child.wait(), DEADLINE)
    assert added.strip() == b"40"
    store = SqliteStore(path)
    await store.open()
    try:
        events = await store.claim("worker", 100, WINDOW)
        assert sorted(e.key for e in events) == sorted(f"k{i}" for i in range(40))
    finally:
        await store.close()


async def test_sqlite_cannot_open_a_file_it_cannot_create(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    store = SqliteStore(tmp_path / "file" / "events.db")
    with pytest.raises(StoreUnavailable, match=r"SQLite store .*events\.db.*unable to open"):
        await store.open()
    with pytest.raises(StoreUnavailable, match="not open"):
        await store.ping()


async def test_sqlite_is_unavailable_while_another_connection_locks_the_file(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    store = SqliteStore(path, timeout=SHORT)
    await store.open()
    try:
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            with pytest.raises(StoreUnavailable, match="locked"):
                await store.enqueue("k1", "call", PARAMS, WINDOW)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert await store.enqueue("k1", "call", PARAMS, WINDOW)  # nothing half-written
        assert (await store.stats()).queued == 1
    finally:
        await store.close()


# Redis


async def test_redis_instances_share_the_work(redis_server: RedisServer) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    one, two = RedisStore(redis_server.url, prefix=prefix), RedisStore(redis_server.url, prefix=prefix)
    await one.open()
    await two.open()
    try:
        await add(one, *(f"k{i}" for i in range(10)))
        assert not await two.enqueue("k0", "call", PARAMS, WINDOW)
        first, second = await asyncio.gather(one.claim("one", 6, WINDOW), two.claim("two", 6, WINDOW))
        assert len(first) + len(second) == 10
        assert {e.id for e in first}.isdisjoint(e.id for e in second)
        for event in second:
            await one.complete(event, WINDOW)
        assert await two.stats() == await one.stats()
        assert (await one.stats()).running == len(first)
    finally:
        await one.close()
        await two.close()


async def test_redis_sends_concurrent_enqueues_and_completions_together(redis_server: RedisServer) -> None:
    store = RedisStore(redis_server.url, prefix=f"test-{uuid.uuid4().hex}")
    await store.open()

    def script_calls() -> int:
        with redis.Redis(port=redis_server.port) as client:
            stats = client.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))

    try:
        before = script_calls()
        added = await asyncio.gather(*(store.enqueue(f"k{i}", "call", PARAMS, WINDOW) for i in range(64)))
        assert added == [True] * 64
        assert 1 <= script_calls() - before <= 8
        events = await store.claim("worker", 64, WINDOW)
        before = script_calls()
        await asyncio.gather(*(store.complete(event, WINDOW) for event in events))
        assert 1 <= script_calls() - before <= 8
        assert await counts(store) == (0, 0, 0)
    finally:
        await store.close()


async def test_redis_moves_the_events_of_the_stream_layout_into_this_one(redis_server: RedisServer) -> None:
    prefix = f"test-{uuid.uuid4().hex}"
    with redis.Redis(port=redis_server.port, decode_responses=True) as client:
        event = '{"key":"k%d","channel":"call","params":[],"received_at":1.0,"attempts":0,"last_error":null}'
        client.xgroup_create(f"{prefix}:stream", "workers", id="0", mkstream=True)
        for i in (1, 2):
            client.xadd(f"{prefix}:stream", {"id": str(i), "event": event % i})
        client.xreadgroup("workers", "gone", {f"{prefix}:stream": ">"}, count=1)  # held by a dead process
        client.hset(f"{prefix}:delayed:events", "3", event % 3)
        client.zadd(f"{prefix}:delayed", {"3": 0})
    store = RedisStore(redis_server.url, prefix=prefix)
    await store.open()
    try:
        assert sorted(e.key for e in await store.claim("worker", 10, WINDOW)) == ["k1", "k2", "k3"]
    finally:
        await store.close()


async def test_redis_is_unavailable_when_nothing_listens() -> None:
    store = RedisStore(f"redis://:secret@127.0.0.1:{free_port()}/0", timeout=1.0, retries=0)
    with pytest.raises(StoreUnavailable, match=r"Redis at redis://:\*\*\*@127\.0\.0\.1") as raised:
        await store.open()
    assert "secret" not in str(raised.value)


async def test_redis_stopped_is_unavailable_and_restarted_has_every_event(tmp_path: Path) -> None:
    server = RedisServer(tmp_path).start()
    store = RedisStore(server.url, timeout=1.0, retries=1)
    try:
        await store.open()
        await add(store, *(f"k{i}" for i in range(20)))
        server.stop(signal.SIGKILL)
        with pytest.raises(StoreUnavailable, match=r"Redis at redis://127\.0\.0\.1"):
            await store.enqueue("k99", "call", PARAMS, WINDOW)
        with pytest.raises(StoreUnavailable):
            await store.ping()
        server.start()  # the same port and files
        events = await store.claim("worker", 100, WINDOW)
        assert sorted(e.key for e in events) == sorted(f"k{i}" for i in range(20))
    finally:
        await store.close()
        server.stop()


def test_redis_store_without_the_redis_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis.asyncio", None)
    with pytest.raises(ImportError, match=r"pip install 'twilio-events\[redis\]'"):
        RedisStore("redis://127.0.0.1:6379/0")


@pytest.mark.parametrize(
    ("url", "kind"),
    [("memory://", MemoryStore), ("sqlite:///x/events.db", SqliteStore), ("redis://h:6379/0", RedisStore)],
)
def test_open_store_picks_the_store_from_the_url(url: str, kind: type[Any]) -> None:
    assert isinstance(open_store(url), kind)


def test_open_store_refuses_an_unknown_url() -> None:
    with pytest.raises(ValueError, match="unknown store URL"):
        open_store("postgres://h/db")


def test_sqlite_path_is_taken_from_the_url() -> None:
    store = open_store("sqlite:///var/lib/events.db")
    assert isinstance(store, SqliteStore)
    assert store.path == "var/lib/events.db"


# MemoryStore: its compact tables remember what an ordered dict of keys would


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return time.time()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(memory, "time", fake)
    return fake


class ModelStore:
    """The memory store's de-duplication and marks as ordered dicts of strings, oldest first."""

    def __init__(self, clock: Clock, max_entries: int) -> None:
        self.clock, self.max_entries = clock, max_entries
        self.handled: dict[str, float] = {}
        self.marks: dict[str, tuple[StatusMark, float]] = {}

    def is_handled(self, key: str) -> bool:
        expiry = self.handled.get(key)
        if expiry is not None and expiry < self.clock.now:
            del self.handled[key]
            return False
        return expiry is not None

    def mark_handled(self, key: str, window: float) -> None:
        self.handled.pop(key, None)
        self.handled[key] = self.clock.now + window
        self._prune(self.handled, lambda expiry: expiry)

    def last_status(self, sid: str) -> StatusMark | None:
        entry = self.marks.get(sid)
        return entry[0] if entry is not None and entry[1] >= self.clock.now else None

    def advance_status(self, sid: str, mark: StatusMark, window: float) -> None:
        current = self.last_status(sid)
        if current is not None and (current.final or mark.position <= current.position):
            return
        self.marks.pop(sid, None)
        self.marks[sid] = (mark, self.clock.now + window)
        self._prune(self.marks, lambda entry: entry[1])

    def _prune(self, entries: dict[str, Any], expiry: Callable[[Any], float]) -> None:
        while entries and (
            expiry(next(iter(entries.values()))) < self.clock.now or len(entries) > self.max_entries
        ):
            del entries[next(iter(entries))]


async def test_memory_store_forgets_the_oldest_keys_past_its_cap(clock: Clock) -> None:
    store = MemoryStore(max_entries=3)
    for key in "abcd":
        await store.mark_handled(key, WINDOW)
    assert [await store.is_handled(key) for key in "abcd"] == [False, True, True, True]
    await store.mark_handled("b", WINDOW)  # written again: now the newest
    await store.mark_handled("e", WINDOW)
    assert [await store.is_handled(key) for key in "bcde"] == [True, False, True, True]


async def test_memory_store_forgets_the_oldest_marks_past_its_cap(clock: Clock) -> None:
    store = MemoryStore(max_entries=2)
    for sid in ("CA1", "CA2", "CA3"):
        await store.advance_status(sid, StatusMark("ringing", (2, 0), final=False), WINDOW)
    assert await store.last_status("CA1") is None
    assert await store.last_status("CA3") == StatusMark("ringing", (2, 0), final=False)


async def test_memory_store_keeps_marks_of_any_status_and_position(clock: Clock) -> None:
    store = MemoryStore()
    mark = StatusMark("conference-end", (7, 2**63 - 1), final=True)
    await store.advance_status("CF1", mark, WINDOW)
    await store.advance_status("CA1", StatusMark("Zoë", (0, 0), final=False), WINDOW)
    assert await store.last_status("CF1") == mark
    assert await store.last_status("CA1") == StatusMark("Zoë", (0, 0), final=False)


async def test_memory_store_keeps_no_more_than_its_live_marks_of_a_sid_written_again_and_again(
    clock: Clock,
) -> None:
    store = MemoryStore()
    for sequence in range(50_000):  # one conference's events, each numbered after the last
        await store.advance_status("CF1", StatusMark("participant-join", (0, sequence), final=False), WINDOW)
    assert await store.last_status("CF1") == StatusMark("participant-join", (0, 49_999), final=False)
    assert len(store._marks) == 1
    assert len(store._marks._log) < 2 * memory.COMPACT_AT * 64  # the forgotten writes were dropped


@pytest.mark.parametrize("seed", range(20))
async def test_memory_store_remembers_what_ordered_dicts_of_keys_would(
    clock: Clock, seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random

    if seed % 2:
        monkeypatch.setattr(memory, "COMPACT_AT", 4)  # rewrite the log often
    rng = random.Random(seed)
    max_entries = rng.choice([1, 5, 40, 2000])
    store, model = MemoryStore(max_entries=max_entries), ModelStore(clock, max_entries)
    keys = [f"call:CA{n:032x}:completed:" for n in range(rng.choice([3, 60, 3000]))]
    statuses = ["queued", "ringing", "in-progress", "completed"]
    for _ in range(6000):  # enough writes that the log drops its forgotten start
        key = rng.choice(keys)
        operation = rng.randrange(5)
        if operation == 0:
            assert await store.is_handled(key) == model.is_handled(key), key
        elif operation == 1:
            window = rng.choice([0.5, 5.0, WINDOW])
            await store.mark_handled(key, window)
            model.mark_handled(key, window)
        elif operation == 2:
            assert await store.last_status(key) == model.last_status(key), key
        elif operation == 3:
            rank = rng.randrange(len(statuses))
            mark = StatusMark(statuses[rank], (rank, rng.randrange(3)), final=rank == 3)
            window = rng.choice([0.5, 5.0, WINDOW])
            await store.advance_status(key, mark, window)
            model.advance_status(key, mark, window)
        else:
            clock.now += rng.choice([0.0, 0.1, 1.0, 3.0])
    for key in keys:
        assert await store.is_handled(key) == model.is_handled(key), key
        assert await store.last_status(key) == model.last_status(key), key
    assert len(store._handled) == len(model.handled)
    assert len(store._marks) == len(model.marks)

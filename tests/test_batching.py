"""Group commit: concurrent submissions share one send, each caller gets its own result or error."""

from __future__ import annotations

import asyncio

import pytest

from twilio_events.stores.batching import Batcher


class Recorder:
    """A `send` that records each batch and answers each item with its double (odd items fail)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.delay = delay

    async def send(self, items: list[int]) -> list[int | Exception]:
        self.batches.append(items)
        await asyncio.sleep(self.delay)
        return [ValueError(f"odd {item}") if item % 2 else item * 2 for item in items]


def test_submissions_of_one_turn_go_in_one_batch_and_each_gets_its_result() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.send)

    async def main() -> list[int | BaseException]:
        return await asyncio.gather(*(batcher.submit(i) for i in range(6)), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert recorder.batches == [[0, 1, 2, 3, 4, 5]]
    assert [o if isinstance(o, int) else str(o) for o in outcomes] == [0, "odd 1", 4, "odd 3", 8, "odd 5"]


def test_what_arrives_while_a_batch_is_sent_goes_in_the_next_one_up_to_the_limit() -> None:
    recorder = Recorder(delay=0.05)
    batcher = Batcher(recorder.send, max_batch=3)

    async def main() -> None:
        first = asyncio.ensure_future(batcher.submit(0))
        await asyncio.sleep(0.01)  # the first batch is on its way
        later = [batcher.submit(i) for i in (2, 4, 6, 8)]
        assert await asyncio.gather(first, *later) == [0, 4, 8, 12, 16]

    asyncio.run(main())
    assert recorder.batches == [[0], [2, 4, 6], [8]]


def test_a_failed_send_fails_every_item_of_its_batch_and_the_next_batch_is_sent() -> None:
    calls: list[list[str]] = []

    async def send(items: list[str]) -> list[str | Exception]:
        calls.append(items)
        if len(calls) == 1:
            raise ConnectionError("store down")
        return items

    batcher = Batcher(send)

    async def main() -> None:
        failed = await asyncio.gather(batcher.submit("a"), batcher.submit("b"), return_exceptions=True)
        assert [str(error) for error in failed] == ["store down", "store down"]
        assert await batcher.submit("c") == "c"

    asyncio.run(main())
    assert calls == [["a", "b"], ["c"]]


def test_a_caller_that_stops_waiting_does_not_disturb_the_others() -> None:
    recorder = Recorder(delay=0.05)
    batcher = Batcher(recorder.send)

    async def main() -> None:
        impatient = asyncio.ensure_future(batcher.submit(2))
        patient = asyncio.ensure_future(batcher.submit(4))
        await asyncio.sleep(0.01)
        impatient.cancel()
        assert await patient == 8
        with pytest.raises(asyncio.CancelledError):
            await impatient

    asyncio.run(main())
    assert recorder.batches == [[2, 4]]


def test_a_batcher_works_again_in_a_new_event_loop() -> None:
    recorder = Recorder()
    batcher = Batcher(recorder.send)
    assert asyncio.run(batcher.submit(2)) == 4
    assert asyncio.run(batcher.submit(4)) == 8

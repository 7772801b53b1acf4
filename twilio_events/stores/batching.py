"""Group commit for a networked store: concurrent calls go to the server together, in one request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class Batcher(Generic[Item, Result]):
    """Calls `send` with every item submitted since its last call began, one call at a time.

    The first item waits for nothing but the end of the current turn of the event loop; items submitted
    while a batch is on its way wait for it and go in the next one, so the busier the store, the larger the
    batches. `send` returns one result (or exception) per item, in order; if it raises, every item of the
    batch gets that exception. `submit` returns only once its batch was sent and answered.
    """

    def __init__(
        self, send: Callable[[list[Item]], Awaitable[list[Result | Exception]]], *, max_batch: int = 256
    ) -> None:
        self._send = send
        self._max_batch = max_batch
        self._waiting: list[tuple[Item, asyncio.Future[Result]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        """Send `item` with whatever else is waiting; its result, or its exception raised."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Result] = loop.create_future()
        self._waiting.append((item, future))
        if self._sender is None or self._sender.done() or self._sender.get_loop() is not loop:
            # none running (or one left behind by an event loop that is gone): start one on this loop
            self._sender = loop.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                try:
                    results = await self._send([item for item, _ in batch])
                except Exception as exc:
                    results = [exc] * len(batch)
                except BaseException:  # cancelled: no caller may wait forever
                    for _, future in batch + self._waiting:
                        future.cancel()
                    self._waiting.clear()
                    raise
                for (_, future), result in zip(batch, results, strict=True):
                    if future.done() or future.get_loop().is_closed():  # its caller is gone
                        continue
                    if isinstance(result, Exception):
                        future.set_exception(result)
                    else:
                        future.set_result(result)
        finally:
            self._sender = None

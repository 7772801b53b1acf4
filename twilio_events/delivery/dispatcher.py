"""The one door of delivery: each recognised callback goes inline or into the store."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from ..channels import Channel, Handler
from ..events import Params
from ..kinds import Recognised
from ..stores.base import Store
from ..stores.identity import ConsumerIdentity
from .durable import DurableDelivery
from .health import health_response
from .inline import InlineDelivery
from .runner import DeliverySettings, HandlerRunner


class Dispatcher:
    """Delivers each recognised callback: inline, or durably when it is asynchronous and durable is on."""

    def __init__(
        self, channels: dict[str, Channel[Any, Any]], store: Store, settings: DeliverySettings
    ) -> None:
        self.store = store
        self.settings = settings
        self._runner = HandlerRunner(store, settings)
        self._inline = InlineDelivery(self._runner)
        self._durable = DurableDelivery(self._runner, channels) if settings.durable else None
        self._identity: ConsumerIdentity | None = None

    @property
    def error_handler(self) -> Handler | None:
        """The `@app.on_error` hook, if any."""
        return self._runner.error_handler

    @error_handler.setter
    def error_handler(self, handler: Handler | None) -> None:
        self._runner.error_handler = handler

    async def start(self) -> None:
        """Open the store and start the workers; in durable mode, take this process's consumer identity
        first, and with it what an earlier process of that identity left held."""
        if self._durable is None:
            await self.store.open()
            return
        identity = ConsumerIdentity.acquire(self.settings.consumer)
        try:
            await self.store.open(consumer=identity.name)
        except BaseException:
            identity.release()
            raise
        self._identity = identity
        self._durable.start(identity.name)

    async def stop(self) -> None:
        """Let running handlers finish within the grace period, then close the store."""
        if self._durable is not None:
            await self._durable.stop(self.settings.shutdown_grace)
        await self.store.close()
        if self._identity is not None:
            self._identity.release()
            self._identity = None

    async def deliver(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str
    ) -> Response:
        """Queue an asynchronous callback in durable mode; run everything else now, answering its result."""
        if self._durable is not None and callback.key is not None:
            return await self._durable.accept(channel, callback, params, listener)
        return await self._inline.deliver(channel, callback, params, listener)

    async def deliver_batch(
        self, items: list[tuple[Channel[Any, Any], Recognised, Params]], listener: str
    ) -> Response:
        """An Event Streams batch: 200 once every event is committed (durable, all at once so that the
        store groups them into one commit) or has run (inline, in order); else the first failure's answer."""
        if self._durable is not None:
            durable = self._durable
            answers = await asyncio.gather(*(durable.accept(c, cb, p, listener) for c, cb, p in items))
        else:
            answers = [await self._inline.deliver(c, cb, p, listener) for c, cb, p in items]
        failed = next((answer for answer in answers if answer.status_code >= 300), None)
        return failed or Response(status_code=200)

    async def health(self) -> Response:
        """The health endpoint's answer."""
        return await health_response(self.store, durable=self.settings.durable)

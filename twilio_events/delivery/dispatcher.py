"""The one door of delivery: each recognised callback goes inline or into the store."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import Any

from starlette.responses import Response

from ..channels import Channel, Handler
from ..events import Params
from ..kinds import Recognised, RequestKind
from ..observability import NO_TELEMETRY, NoTelemetry
from ..observability.sampling import sample_stores
from ..reconcile import CALL_DONE, MESSAGE_DONE, Reconciler, Recovery
from ..stores.base import Store, StoreUnavailable
from ..stores.identity import ConsumerIdentity
from .durable import DurableDelivery
from .health import health_response
from .inline import InlineDelivery
from .outcome import StoredObserver
from .runner import DeliverySettings, HandlerRunner


class Dispatcher:
    """Delivers each recognised callback: inline, or durably when it is asynchronous and durable is on."""

    def __init__(
        self,
        channels: dict[str, Channel[Any, Any]],
        store: Store,
        settings: DeliverySettings,
        reconciler: Reconciler | None = None,
        telemetry: NoTelemetry = NO_TELEMETRY,
    ) -> None:
        self.store = store
        self.telemetry = telemetry
        self.settings = settings
        self.channels = channels
        self.reconciler = reconciler
        self._runner = HandlerRunner(store, settings, telemetry)
        self._inline = InlineDelivery(self._runner)
        self._durable = DurableDelivery(self._runner, channels) if settings.durable else None
        self._identity: ConsumerIdentity | None = None
        if reconciler is not None:
            self._runner.observer = reconciler.observe

    def observe_stored(self, observer: StoredObserver) -> None:
        """Tell `observer` what the workers make of each stored event (nothing happens when inline)."""
        if self._durable is not None:
            self._durable.observer = observer

    @property
    def error_handler(self) -> Handler | None:
        """The `@app.on_error` hook, if any."""
        return self._runner.error_handler

    @error_handler.setter
    def error_handler(self, handler: Handler | None) -> None:
        self._runner.error_handler = handler

    async def start(self) -> None:
        """Open the store and start the workers (and the reconciliation passes); in durable mode, take
        this process's consumer identity first, and with it what an earlier process of that identity left
        held."""
        if self._durable is None:
            await self.store.open()
        else:
            identity = ConsumerIdentity.acquire(self.settings.consumer)
            try:
                await self.store.open(consumer=identity.name)
            except BaseException:
                identity.release()
                raise
            self._identity = identity
            self._durable.start(identity.name)
        if self.reconciler is not None:
            self.reconciler.start(self.deliver_recovered)

    async def stop(self) -> None:
        """Let running handlers finish within the grace period, then close the store."""
        if self.reconciler is not None:
            await self.reconciler.stop()
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
        callback = self._keyed(callback)
        if self._durable is not None and callback.key is not None:
            return await self._durable.accept(channel, callback, params, listener)
        return await self._inline.deliver(channel, callback, params, listener)

    async def deliver_batch(
        self, items: list[tuple[Channel[Any, Any], Recognised, Params]], listener: str
    ) -> Response:
        """An Event Streams batch: 200 once every event is committed (durable, all at once so that the
        store groups them into one commit) or has run (inline, in order); else the first failure's answer."""
        keyed = [(c, self._keyed(cb), p) for c, cb, p in items]
        if self._durable is not None:
            durable = self._durable
            answers = await asyncio.gather(*(durable.accept(c, cb, p, listener) for c, cb, p in keyed))
        else:
            answers = [await self._inline.deliver(c, cb, p, listener) for c, cb, p in keyed]
        failed = next((answer for answer in answers if answer.status_code >= 300), None)
        return failed or Response(status_code=200)

    async def deliver_recovered(self, callback: Recognised, params: Params) -> str:
        """A status recovered from the REST API, keyed by SID and status so that the real callback,
        arriving late, runs nothing: "delivered", "duplicate" (that status was handled) or "failed"."""
        callback = dataclasses.replace(callback, key=status_key(callback))
        assert callback.key is not None
        try:
            if await self.store.is_handled(callback.key):
                return "duplicate"
        except StoreUnavailable:
            return "failed"
        response = await self.deliver(self.channels[callback.channel], callback, params, "reconcile")
        if response.status_code >= 300:
            return "failed"
        self.telemetry.recovered(callback.channel)
        return "delivered"

    async def reconcile(self, since: float | None, *, dry_run: bool, started: bool) -> list[Recovery]:
        """One reconciliation pass now (see TwilioEvents.reconcile), opening the store when not started."""
        reconciler = self.reconciler
        assert reconciler is not None
        now = time.time()
        bounds: dict[str, float] = {"seen_before": now, "seen_after": now - since} if since else {}
        deliver = None if dry_run else self.deliver_recovered
        if started:
            return await reconciler.run_pass(deliver, **bounds)
        await self.store.open(recover=False)
        try:
            return await reconciler.run_pass(deliver, **bounds)
        finally:
            await reconciler.watchlist.close()
            await self.store.close()

    async def health(self) -> Response:
        """The health endpoint's answer."""
        reconcile = None
        if self.reconciler is not None:
            reconcile = (self.reconciler.watchlist.count(), self.reconciler.recovered)
        return await health_response(self.store, durable=self.settings.durable, reconcile=reconcile)

    async def metrics(self) -> bytes:
        """The metrics exposition, with the queue and watchlist gauges read now."""
        watchlist = self.reconciler.watchlist if self.reconciler is not None else None
        sample = await sample_stores(self.store if self.settings.durable else None, watchlist)
        return await self.telemetry.scrape(sample)

    def _keyed(self, callback: Recognised) -> Recognised:
        """The callback under its status key when `status_keys` asks for one, else unchanged."""
        mode = self.settings.status_keys
        if mode is None or callback.kind not in _STATUS_KINDS:
            return callback
        if mode == "final" and callback.status not in _DONE[callback.channel]:
            return callback
        return dataclasses.replace(callback, key=status_key(callback))


_STATUS_KINDS = frozenset({RequestKind.CALL_STATUS, RequestKind.MESSAGE_STATUS})
_DONE = {"call": CALL_DONE, "sms": MESSAGE_DONE}


def status_key(callback: Recognised) -> str:
    """The key one status of one call or message has, whichever way it arrives (callback, Event Streams,
    the REST API)."""
    return f"status:{callback.channel}:{callback.sid}:{callback.status}"

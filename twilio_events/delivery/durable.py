"""Durable delivery: a callback is committed to the store before it is acknowledged, and workers run it."""

from __future__ import annotations

import dataclasses
import functools
import logging
import random
import traceback
from typing import Any

from starlette.responses import Response

from ..channels import Channel
from ..events import Params
from ..http.responses import acknowledge
from ..kinds import Recognised, recognise
from ..observability.logging import callback_fields
from ..stores.base import LeaseLost, StatusMark, StoredEvent, StoreUnavailable
from .holds import SidBusy
from .inline import store_down
from .outcome import StoredObserver, listen, note
from .runner import HandlerFailed, HandlerRunner
from .workers import WorkerPool

logger = logging.getLogger("twilio_events")

POSTPONE = (0.2, 1.0)
"""Seconds (from, to) an event whose SID another process holds is put off for."""
TRACEBACK_LIMIT = 4096
"""Characters of a failure's traceback kept with the event: the end, where the error is."""


class DurableDelivery:
    """Accepts callbacks into the store and runs them from it, retrying failures, then dead-lettering."""

    def __init__(self, runner: HandlerRunner, channels: dict[str, Channel[Any, Any]]) -> None:
        self._runner = runner
        self._channels = channels
        settings = runner.settings
        self._workers = WorkerPool(
            runner.store, self.run_stored, workers=settings.workers, lease=settings.lease
        )
        self.observer: StoredObserver | None = None
        """Told what became of each stored event a worker ran (the console, when on)."""

    def start(self, consumer: str) -> None:
        """Start the workers on the running loop, holding events as `consumer`."""
        self._workers.start(consumer)

    async def stop(self, grace: float) -> None:
        """Stop taking events; running handlers get `grace` seconds to finish."""
        await self._workers.stop(grace)

    async def accept(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str
    ) -> Response:
        """Commit the event to the store and acknowledge at once; the workers run it."""
        key = callback.key
        assert key is not None, "a request whose answer Twilio executes is never queued"
        telemetry = self._runner.telemetry
        try:
            pairs = telemetry.carry(params.multi_items())
            added = await self._runner.store.enqueue(
                key, channel.name, pairs, self._runner.settings.dedupe_window
            )
        except StoreUnavailable as exc:
            telemetry.outcome(channel.name, callback.label, "unavailable")
            return store_down(exc, listener)
        note("queued" if added else "duplicate")
        if added:
            self._workers.notify()
            telemetry.outcome(channel.name, callback.label, "queued")
        else:
            fields = callback_fields(listener, channel.name, callback.label, callback.sid, "duplicate")
            logger.info(
                "[%s] duplicate %s callback %s: already accepted", listener, channel.name, key, extra=fields
            )
            telemetry.outcome(channel.name, callback.label, "duplicate")
        return acknowledge()

    async def run_stored(self, stored: StoredEvent) -> None:
        """A worker's job: run one stored event, then complete (with its status mark), retry or
        dead-letter it."""
        runner = self._runner
        worker = runner.telemetry.worker(stored.channel, stored.key, stored.params, stored.attempts + 1)
        with worker as pairs:
            await self._run(stored, pairs)

    async def _run(self, stored: StoredEvent, pairs: list[tuple[str, str]]) -> None:
        runner = self._runner
        outcome = listen() if self.observer is not None else None
        try:
            try:
                channel = self._channels[stored.channel]
                params = Params.from_pairs(pairs)
                callback = dataclasses.replace(recognise(params), key=stored.key)
                complete = functools.partial(self._complete, stored)
                await runner.run(channel, callback, params, "worker", reply=False, finish=complete)
                if self.observer is not None and outcome is not None:
                    self.observer(stored.key, outcome.name, outcome.handler)
            except HandlerFailed as failure:
                await runner.report(failure, channel, "worker")
                await self._retry_or_bury(stored, failure.error, failure.handler.name)
                return
            except SidBusy as busy:  # another process runs its SID: later, without counting an attempt
                delay = random.uniform(*POSTPONE)
                await runner.store.retry_later(stored, stored.last_error or "", delay, count=False)
                logger.info("%s put off for %.1f s: %s", stored.key, delay, busy)
                return
            except (StoreUnavailable, LeaseLost):
                raise
            except Exception as exc:  # not the handler's: still retried, then dead-lettered, never stuck
                logger.error("%s could not be dispatched", stored.key, exc_info=exc)
                await self._retry_or_bury(stored, exc)
                return
        except LeaseLost as exc:
            logger.warning("outcome of %s dropped (the event runs under its new holder): %s", stored.key, exc)
        except StoreUnavailable as exc:
            logger.error("store unavailable while finishing %s (it runs again later): %s", stored.key, exc)
        except Exception as exc:  # the store refused this one event: it stays held and runs again later
            logger.error("could not record the outcome of %s (it runs again later)", stored.key, exc_info=exc)

    async def _complete(self, stored: StoredEvent, status: tuple[str, StatusMark] | None) -> None:
        """Complete the event and record its status mark in one store call."""
        await self._runner.store.complete(stored, self._runner.settings.dedupe_window, status)

    async def _retry_or_bury(self, stored: StoredEvent, error: Exception, handler: str = "") -> None:
        settings = self._runner.settings
        store = self._runner.store
        attempts = stored.attempts + 1
        message = error_text(error)
        if attempts >= settings.retry.max_attempts:
            await store.dead_letter(stored, message)
            self._runner.telemetry.retried(stored.channel, dead=True)
            logger.error(
                "%s failed %d times: moved to the dead letters (%s)", stored.key, attempts, last_line(message)
            )
            if self.observer is not None:
                self.observer(stored.key, "dead letter", handler)
        else:
            delay = settings.retry.delay(attempts)
            await store.retry_later(stored, message, delay)
            self._runner.telemetry.retried(stored.channel, dead=False)
            logger.warning("%s failed (attempt %d): retrying in %.1f s", stored.key, attempts, delay)
            if self.observer is not None:
                self.observer(stored.key, "retrying", handler)


def error_text(error: BaseException) -> str:
    """The error with its traceback, the last TRACEBACK_LIMIT characters of it."""
    text = "".join(traceback.format_exception(error)).rstrip("\n")
    if len(text) > TRACEBACK_LIMIT:
        text = "...\n" + text[-TRACEBACK_LIMIT:].partition("\n")[2]
    return text


def last_line(text: str) -> str:
    """The last line of an error's text: the error itself, without its traceback."""
    return text.rstrip("\n").rpartition("\n")[2]

"""Running handlers: inline before the response, or durably from the store, with de-dup and ordering."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.responses import JSONResponse, Response

from .channels import WEBHOOK_DECORATORS, Channel, Handler
from .delivery import RetryPolicy, WorkerPool, is_regression, status_mark
from .events import CallEvent, Params, SmsEvent
from .kinds import Recognised, recognise
from .responses import acknowledge, handler_response, refuse
from .stores.base import Store, StoredEvent, StoreUnavailable

logger = logging.getLogger("twilio_events")

Event = CallEvent | SmsEvent


class HandlerFailed(Exception):
    """A handler raised (or returned something that is not a response); carries what the logs need."""

    def __init__(self, handler: Handler, event: Event, error: Exception) -> None:
        super().__init__(str(error))
        self.handler = handler
        self.event = event
        self.error = error


@dataclass(slots=True)
class DeliverySettings:
    """How events are delivered: see TwilioEvents' parameters of the same names."""

    durable: bool
    ordering: str | None
    dedupe_window: float
    retry: RetryPolicy
    workers: int
    visibility_timeout: float
    shutdown_grace: float


class Dispatcher:
    """Runs the handler for each accepted callback and remembers what was handled."""

    def __init__(
        self, channels: dict[str, Channel[Any, Any]], store: Store, settings: DeliverySettings
    ) -> None:
        self.channels = channels
        self.store = store
        self.settings = settings
        self.error_handler: Handler | None = None
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._sid_locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}  # SID -> (lock, [users])
        self._workers = (
            WorkerPool(
                store,
                self.run_stored,
                workers=settings.workers,
                consumer=f"worker-{id(self):x}",
                visibility_timeout=settings.visibility_timeout,
            )
            if settings.durable
            else None
        )

    async def start(self) -> None:
        """Open the store (recovering unfinished events) and start the workers."""
        await self.store.open()
        if self._workers is not None:
            self._workers.start()

    async def stop(self) -> None:
        """Let running handlers finish within the grace period, then close the store."""
        if self._workers is not None:
            await self._workers.stop(self.settings.shutdown_grace)
        await self.store.close()

    async def inline(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str
    ) -> Response:
        """Run the handler now and answer with its result; duplicates of a handled event are acknowledged.

        A request whose answer Twilio executes has no key: it runs every time, since Twilio only sends it
        again when it did not get the TwiML, and an empty answer would end the call.
        """
        key = callback.key
        if key is None:
            try:
                return await self._handle(channel, callback, params, listener, reply=True)
            except HandlerFailed as failure:
                return await self._failed_response(failure, channel, listener)
            except StoreUnavailable as exc:
                return _store_down(exc, listener)
        while (earlier := self._inflight.get(key)) is not None:
            await asyncio.shield(earlier)  # a copy of this callback is running: wait for its outcome
        # claimed before the first await, so that a copy arriving meanwhile waits for this one
        done = self._inflight[key] = asyncio.get_running_loop().create_future()
        try:
            if await self.store.is_handled(key):
                logger.info(
                    "[%s] duplicate %s callback %s: acknowledged, not run again", listener, channel.name, key
                )
                return acknowledge()
            response = await self._handle(channel, callback, params, listener, reply=True)
            await self.store.mark_handled(key, self.settings.dedupe_window)
        except HandlerFailed as failure:
            return await self._failed_response(failure, channel, listener)
        except StoreUnavailable as exc:
            return _store_down(exc, listener)
        finally:
            del self._inflight[key]
            done.set_result(None)
        return response

    async def accept(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str
    ) -> Response:
        """Commit the event to the store and acknowledge at once; the workers run it."""
        key = callback.key
        assert key is not None, "a request whose answer Twilio executes is never queued"
        try:
            added = await self.store.enqueue(
                key, channel.name, params.multi_items(), self.settings.dedupe_window
            )
        except StoreUnavailable as exc:
            return _store_down(exc, listener)
        if added:
            assert self._workers is not None
            self._workers.notify()
        else:
            logger.info("[%s] duplicate %s callback %s: already accepted", listener, channel.name, key)
        return acknowledge()

    async def run_stored(self, stored: StoredEvent) -> None:
        """A worker's job: run one stored event, then complete, retry or dead-letter it."""
        store = self.store
        try:
            try:
                channel = self.channels[stored.channel]
                params = Params.from_pairs(stored.params)
                callback = dataclasses.replace(recognise(params), key=stored.key)
                await self._handle(channel, callback, params, "worker", reply=False)
            except HandlerFailed as failure:
                await self._report(failure, channel, "worker")
                await self._retry_or_bury(stored, failure.error)
                return
            except StoreUnavailable:
                raise
            except Exception as exc:  # not the handler's: still retried, then dead-lettered, never stuck
                logger.error("%s could not be dispatched", stored.key, exc_info=exc)
                await self._retry_or_bury(stored, exc)
                return
            await store.complete(stored, self.settings.dedupe_window)
        except StoreUnavailable as exc:
            logger.error("store unavailable while finishing %s (it runs again later): %s", stored.key, exc)
        except Exception as exc:  # the store refused this one event: it stays held and runs again later
            logger.error("could not record the outcome of %s (it runs again later)", stored.key, exc_info=exc)

    async def health(self) -> Response:
        """Liveness, and in durable mode the queue's depth, dead letters and whether the store answers."""
        body: dict[str, Any] = {"status": "ok", "delivery": "durable" if self.settings.durable else "inline"}
        try:
            await self.store.ping()
            stats = await self.store.stats()
        except StoreUnavailable as exc:
            logger.error("health check: the store is unavailable: %s", exc)  # details stay in the log
            body.update(status="unavailable", store="unavailable")
            return JSONResponse(body, status_code=503)
        body.update(store="ok", queued=stats.queued, running=stats.running, dead_letters=stats.dead)
        return JSONResponse(body)

    async def _handle(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str, *, reply: bool
    ) -> Response:
        """Ordering check, event, handler, status mark: the response to send when `reply`.

        Raises HandlerFailed when the handler raises, or (with `reply`) returns what is not a response.
        """
        if self.settings.ordering == "monotonic" and callback.sid and callback.is_status:
            # One event per SID at a time (workers, concurrent requests), or two could both pass the
            # check against the same previous status and run out of order.
            async with self._one_at_a_time(callback.sid):
                return await self._check_and_run(channel, callback, params, listener, reply=reply)
        return await self._check_and_run(channel, callback, params, listener, reply=reply)

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, sid: str) -> AsyncIterator[None]:
        """Hold the lock of `sid` in this process; it is dropped when nobody holds or waits for it."""
        lock, users = self._sid_locks.setdefault(sid, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if not users[0]:
                del self._sid_locks[sid]

    async def _check_and_run(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str, *, reply: bool
    ) -> Response:
        event_type = CallEvent if channel.name == "call" else SmsEvent
        sid, status = callback.sid, callback.status
        mark = (
            status_mark(channel.name, status, _int_or_none(params.get("SequenceNumber")))
            if callback.is_status
            else None
        )
        previous = await self.store.last_status(sid) if sid else None
        if self.settings.ordering == "monotonic" and is_regression(previous, mark):
            assert previous is not None
            logger.info(
                "[%s] %s %s %s arrived after %s: acknowledged, not dispatched",
                listener,
                channel.name,
                sid,
                status,
                previous.status,
            )
            return acknowledge()
        event = event_type.from_params(
            params,
            previous_status=previous.status if previous else None,
            idempotency_key=callback.event_key,
            kind=callback.kind,
        )
        handler = channel.handler_for(callback.route)
        response = acknowledge()
        if handler is None:
            _log_unhandled(callback, channel.name, listener)
        else:
            try:
                result = await handler.call(event)
                if reply:
                    response = handler_response(result)
            except Exception as exc:
                raise HandlerFailed(handler, event, exc) from exc
            logger.info("[%s] %s %s %s -> %s()", listener, channel.name, callback.label, sid, handler.name)
        if sid and mark is not None:
            await self.store.advance_status(sid, mark, self.settings.dedupe_window)
        return response

    async def _retry_or_bury(self, stored: StoredEvent, error: Exception) -> None:
        attempts = stored.attempts + 1
        message = f"{type(error).__name__}: {error}"
        if attempts >= self.settings.retry.max_attempts:
            await self.store.dead_letter(stored, message)
            logger.error("%s failed %d times: moved to the dead letters (%s)", stored.key, attempts, message)
        else:
            delay = self.settings.retry.delay(attempts)
            await self.store.retry_later(stored, message, delay)
            logger.warning("%s failed (attempt %d): retrying in %.1f s", stored.key, attempts, delay)

    async def _report(self, failure: HandlerFailed, channel: Channel[Any, Any], listener: str) -> Any:
        """Log the failure with its traceback and SID, and give it to the error hook; the hook's answer."""
        event = failure.event
        logger.error(
            "[%s] %s handler %s() failed for %s %s",
            listener,
            channel.name,
            failure.handler.name,
            event.sid,
            event.status,
            exc_info=failure.error,
        )
        if self.error_handler is None:
            return None
        try:
            return await self.error_handler.call(event, failure.error)
        except Exception as hook_error:
            logger.error(
                "[%s] error hook %s() failed", listener, self.error_handler.name, exc_info=hook_error
            )
            return None

    async def _failed_response(
        self, failure: HandlerFailed, channel: Channel[Any, Any], listener: str
    ) -> Response:
        result = await self._report(failure, channel, listener)
        if result is not None:
            try:
                return handler_response(result)
            except TypeError as exc:
                logger.error("[%s] error hook returned an unusable value: %s", listener, exc)
        return refuse(
            500, f"Internal Server Error: the {channel.name} handler failed for {failure.event.sid}"
        )


def _int_or_none(value: str | None) -> int | None:
    """A SequenceNumber as a number a store can keep (up to 2**63 - 1), else None."""
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 2**63 else None


def _store_down(exc: StoreUnavailable, listener: str) -> Response:
    logger.error("[%s] store unavailable, callback refused with 503 so Twilio can retry: %s", listener, exc)
    return refuse(503, "Service Unavailable: the callback could not be stored; try again later")


def _log_unhandled(callback: Recognised, channel: str, listener: str) -> None:
    decorator = WEBHOOK_DECORATORS.get(callback.kind)
    if decorator is not None:
        logger.warning(
            "[%s] %s for %s has no handler (@app.%s.%s): answered with an empty <Response/>, "
            "so Twilio ends the call",
            listener,
            callback.kind.description,
            callback.sid,
            channel,
            decorator,
        )
    else:
        logger.debug(
            "[%s] no %s handler for %r (%s): acknowledged", listener, channel, callback.label, callback.sid
        )

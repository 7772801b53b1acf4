"""Running one handler: the ordering check, the typed event, the handler, and the status mark after it."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response

from ..channels import WEBHOOK_DECORATORS, Channel, Handler
from ..events import Event, Params
from ..http.responses import acknowledge, handler_response, refuse
from ..kinds import Recognised
from ..observability import NO_TELEMETRY, NoTelemetry
from ..observability.logging import callback_fields
from ..stores.base import StatusMark, Store
from .holds import Hold, SidHolds
from .ordering import LIFECYCLES, SidLocks, is_regression, status_mark
from .outcome import note
from .retry import RetryPolicy

logger = logging.getLogger("twilio_events")

Finish = Callable[[tuple[str, StatusMark] | None], Awaitable[None]]
"""What is done once a callback was dispatched, with its (sid, status mark) to record, if any."""

INLINE_WAIT = 10.0
"""Seconds a callback answered inline waits for another process to let go of its SID (Twilio waits 15)."""
WORKER_WAIT = 1.0
"""Seconds a worker waits for another process to let go of a SID before putting its event off."""


@dataclass(slots=True)
class DeliverySettings:
    """How events are delivered: see TwilioEvents' parameters of the same names."""

    durable: bool
    ordering: str | None
    dedupe_window: float
    retry: RetryPolicy
    workers: int
    lease: float
    shutdown_grace: float
    status_keys: str | None = None
    """Key call and message statuses by SID and status: "final" ones only (reconciliation), "all" of them
    (dedupe_by_status), or None (each callback by its own key)."""
    consumer: str | None = None


class HandlerFailed(Exception):
    """A handler raised (or returned something that is not a response); carries what the logs need."""

    def __init__(self, handler: Handler, event: Event, error: Exception) -> None:
        super().__init__(str(error))
        self.handler = handler
        self.event = event
        self.error = error


class HandlerRunner:
    """Runs the handler of one recognised callback, inline or from a worker, and reports its failures."""

    def __init__(
        self, store: Store, settings: DeliverySettings, telemetry: NoTelemetry = NO_TELEMETRY
    ) -> None:
        self.store = store
        self.settings = settings
        self.telemetry = telemetry
        self.error_handler: Handler | None = None
        self.observer: Callable[[Recognised, Params], Awaitable[None]] | None = None
        """Told of every status handled (reconciliation watches calls and messages with it)."""
        self._sid_locks = SidLocks()
        self._holds = SidHolds(store, settings.lease, settings.dedupe_window)

    async def run(
        self,
        channel: Channel[Any, Any],
        callback: Recognised,
        params: Params,
        listener: str,
        *,
        reply: bool,
        finish: Finish | None = None,
    ) -> Response:
        """Ordering check, event, handler, status mark: the response to send when `reply`.

        `finish`, when given, is awaited once the callback was dispatched (or skipped as out of order),
        with the status mark to record, instead of recording it here: a worker completes the event and
        records the mark in one store call. Within the SID's lock when ordering is monotonic.

        With ordering "monotonic", the SID is held across every process sharing the store while its
        callback is checked and run (delivery/holds.py); SidBusy when another process holds it for longer
        than this callback may wait.

        Raises HandlerFailed when the handler raises, or (with `reply`) returns what is not a response.
        """
        if self.settings.ordering == "monotonic" and callback.sid and callback.is_status:
            if channel.name in LIFECYCLES:
                wait = INLINE_WAIT if finish is None else WORKER_WAIT
                async with self._holds.hold(callback.sid, wait) as hold:
                    return await self._check_and_run(channel, callback, params, listener, reply, finish, hold)
            async with self._sid_locks.hold(callback.sid):
                return await self._check_and_run(channel, callback, params, listener, reply, finish)
        return await self._check_and_run(channel, callback, params, listener, reply, finish)

    async def report(self, failure: HandlerFailed, channel: Channel[Any, Any], listener: str) -> Any:
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
            extra=callback_fields(
                listener, channel.name, str(event.status), event.sid, "failed", failure.handler.name
            ),
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

    async def failed_response(
        self, failure: HandlerFailed, channel: Channel[Any, Any], listener: str
    ) -> Response:
        """The answer to a failed inline handler: the error hook's, else a 500 without a traceback."""
        result = await self.report(failure, channel, listener)
        if result is not None:
            try:
                return handler_response(result)
            except TypeError as exc:
                logger.error("[%s] error hook returned an unusable value: %s", listener, exc)
        return refuse(
            500, f"Internal Server Error: the {channel.name} handler failed for {failure.event.sid}"
        )

    async def _check_and_run(
        self,
        channel: Channel[Any, Any],
        callback: Recognised,
        params: Params,
        listener: str,
        reply: bool,
        finish: Finish | None,
        hold: Hold | None = None,
    ) -> Response:
        sid, status = callback.sid, callback.status
        mark = (
            status_mark(channel.name, status, _int_or_none(params.get("SequenceNumber")))
            if callback.is_status
            else None
        )
        # Only a channel with a lifecycle keeps marks for its SIDs: an AMD result's CallSid is the call's.
        if hold is not None:
            previous = hold.previous  # read with the hold taken: no other process can advance it now
        else:
            previous = await self.store.last_status(sid) if sid and channel.name in LIFECYCLES else None
        if self.settings.ordering == "monotonic" and is_regression(previous, mark):
            assert previous is not None
            logger.info(
                "[%s] %s %s %s arrived after %s: acknowledged, not dispatched",
                listener,
                channel.name,
                sid,
                status,
                previous.status,
                extra=callback_fields(listener, channel.name, status, sid, "out_of_order"),
            )
            note("out-of-order")
            self.telemetry.outcome(channel.name, callback.label, "out_of_order")
            if finish is not None:
                await finish(None)
            return acknowledge()
        event = channel.event_type.from_params(
            params,
            previous_status=previous.status if previous else None,
            idempotency_key=callback.event_key,
            kind=callback.kind,
        )
        handler = channel.handler_for(callback.route)
        response = acknowledge()
        telemetry = self.telemetry
        if handler is None:
            _log_unhandled(callback, channel.name, listener)
            note("acknowledged")
            telemetry.outcome(channel.name, callback.label, "unhandled")
        else:
            started = time.perf_counter()
            try:
                with telemetry.step("handler"):
                    result = await handler.call(event)
                if reply:
                    response = handler_response(result)
            except Exception as exc:
                note("failed", handler.name)
                telemetry.outcome(channel.name, callback.label, "failed")
                raise HandlerFailed(handler, event, exc) from exc
            note("handled", handler.name)
            took = time.perf_counter() - started
            telemetry.handled(channel.name, handler.name, took, params.get("Timestamp"))
            telemetry.outcome(channel.name, callback.label, "handled")
            if logger.isEnabledFor(logging.INFO):
                fields = callback_fields(
                    listener, channel.name, callback.label, sid, "handled", handler.name, took
                )
                logger.info(
                    "[%s] %s %s %s -> %s()",
                    listener,
                    channel.name,
                    callback.label,
                    sid,
                    handler.name,
                    extra=fields,
                )
        to_record = (sid, mark) if sid and mark is not None else None
        if finish is not None:
            await finish(to_record)
        elif hold is not None:
            hold.record = mark  # recorded with the hold's release, in one store call
        elif to_record is not None:
            await self.store.advance_status(*to_record, self.settings.dedupe_window)
        if self.observer is not None and callback.is_status:
            await self.observer(callback, params)
        return response


def _int_or_none(value: str | None) -> int | None:
    """A SequenceNumber as a number a store can keep (up to 2**63 - 1), else None."""
    try:
        number = int(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 2**63 else None


def _log_unhandled(callback: Recognised, channel: str, listener: str) -> None:
    decorator = WEBHOOK_DECORATORS.get(callback.kind)
    if decorator is not None and callback.kind.answered:
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
        fields = callback_fields(listener, channel, callback.label, callback.sid, "unhandled")
        logger.debug(
            "[%s] no %s handler for %r (%s): acknowledged",
            listener,
            channel,
            callback.label,
            callback.sid,
            extra=fields,
        )

"""Inline delivery: the handler runs before the answer, and copies of a handled callback do not run again."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from starlette.responses import Response

from ..channels import Channel
from ..events import Params
from ..http.responses import acknowledge, refuse
from ..kinds import Recognised
from ..observability.logging import callback_fields
from ..stores.base import StoreUnavailable
from .holds import SidBusy
from .outcome import note
from .runner import HandlerFailed, HandlerRunner

logger = logging.getLogger("twilio_events")


class InlineDelivery:
    """Runs each callback's handler now; a copy arriving while it runs waits for its outcome."""

    def __init__(self, runner: HandlerRunner) -> None:
        self._runner = runner
        self._inflight: dict[str, asyncio.Future[None]] = {}

    async def deliver(
        self, channel: Channel[Any, Any], callback: Recognised, params: Params, listener: str
    ) -> Response:
        """Run the handler and answer with its result; duplicates of a handled event are acknowledged.

        A request whose answer Twilio executes has no key: it runs every time, since Twilio only sends it
        again when it did not get the TwiML, and an empty answer would end the call.
        """
        runner = self._runner
        key = callback.key
        if key is None:
            try:
                return await runner.run(channel, callback, params, listener, reply=True)
            except HandlerFailed as failure:
                return await runner.failed_response(failure, channel, listener)
            except StoreUnavailable as exc:
                runner.telemetry.outcome(channel.name, callback.label, "unavailable")
                return store_down(exc, listener)
            except SidBusy as exc:
                return sid_busy(exc, listener)
        while (earlier := self._inflight.get(key)) is not None:
            await asyncio.shield(earlier)  # a copy of this callback is running: wait for its outcome
        # claimed before the first await, so that a copy arriving meanwhile waits for this one
        done = self._inflight[key] = asyncio.get_running_loop().create_future()
        store = runner.store
        try:
            if await store.is_handled(key):
                logger.info(
                    "[%s] duplicate %s callback %s: acknowledged, not run again",
                    listener,
                    channel.name,
                    key,
                    extra=callback_fields(listener, channel.name, callback.label, callback.sid, "duplicate"),
                )
                note("duplicate")
                runner.telemetry.outcome(channel.name, callback.label, "duplicate")
                return acknowledge()
            response = await runner.run(channel, callback, params, listener, reply=True)
            await store.mark_handled(key, runner.settings.dedupe_window)
        except HandlerFailed as failure:
            return await runner.failed_response(failure, channel, listener)
        except StoreUnavailable as exc:
            runner.telemetry.outcome(channel.name, callback.label, "unavailable")
            return store_down(exc, listener)
        except SidBusy as exc:
            return sid_busy(exc, listener)
        finally:
            del self._inflight[key]
            done.set_result(None)
        return response


def store_down(exc: StoreUnavailable, listener: str) -> Response:
    """503, so that Twilio may send the callback again once the store is back."""
    logger.error("[%s] store unavailable, callback refused with 503 so Twilio can retry: %s", listener, exc)
    return refuse(503, "Service Unavailable: the callback could not be stored; try again later")


def sid_busy(exc: SidBusy, listener: str) -> Response:
    """503, so that Twilio sends the callback again once the process running its SID is done."""
    logger.warning("[%s] callback refused with 503 so Twilio can retry: %s", listener, exc)
    return refuse(503, "Service Unavailable: a callback of the same SID is running; try again later")

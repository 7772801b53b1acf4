"""Reconciliation: every call and message seen reaches its final status in the handlers, once.

The runner reports each handled call or message status (`observe`). A background pass then claims the
SIDs whose last status is not final and older than `reconcile_after`, asks the REST API where each
stands, and, when Twilio reports a later status, delivers it through the same dispatcher as a callback,
marked `RecoveredFrom=rest-api` and keyed by SID and status, so that the real callback arriving late
finds it handled and runs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..delivery.ordering import is_regression, status_mark
from ..events import Params
from ..kinds import Recognised, recognise
from .fetch import CALL_DONE, MESSAGE_DONE, fetch_params
from .watchlist import Watched, Watchlist

if TYPE_CHECKING:
    from twilio.rest import Client

    from ..stores import Store

logger = logging.getLogger("twilio_events")

Deliver = Callable[[Recognised, Params], Awaitable[str]]
"""Hands a recovered status to the dispatcher: "delivered" (handled, or committed in durable mode),
"duplicate" (that status was handled already: the real callback came meanwhile) or "failed"."""


@dataclass(frozen=True, slots=True)
class Recovery:
    """What a pass found for one SID: the status Twilio reports, and whether it was delivered."""

    channel: str
    sid: str
    last_status: str
    twilio_status: str
    delivered: bool
    error: str | None = None
    """Why Twilio could not be asked (the SID waits for the next pass); None when it answered."""


class Reconciler:
    """Watches unfinished calls and messages, and delivers the final statuses Twilio's callbacks missed."""

    def __init__(
        self,
        watchlist: Watchlist,
        store: Store,
        client: Callable[[], Client],
        *,
        after: float,
        max_age: float = 86400.0,
        interval: float | None = None,
        batch: int = 50,
    ) -> None:
        self.watchlist = watchlist
        self.store = store
        self._client = client
        self.after = after
        self.max_age = max_age
        self.interval = interval if interval is not None else max(0.05, min(after / 4, 60.0))
        self.batch = batch
        self.lease = max(2.0, self.interval * 4)
        """How long a pass holds the SIDs it claimed (other instances leave them alone meanwhile)."""
        self.recovered = 0
        """Statuses delivered from the REST API by this process since it started."""
        self._task: asyncio.Task[None] | None = None

    async def observe(self, callback: Recognised, params: Params) -> None:
        """A call's or message's status was handled: watch it until its final status."""
        if callback.channel not in ("call", "sms") or not callback.sid:
            return
        done = CALL_DONE if callback.channel == "call" else MESSAGE_DONE
        if callback.status in done:
            await self.watchlist.forget(callback.sid)
        else:
            account = str(params.get("AccountSid") or "")
            await self.watchlist.touch(callback.channel, callback.sid, account, callback.status)

    def start(self, deliver: Deliver) -> None:
        """Run a pass every `interval` seconds on the running loop."""
        self._task = asyncio.create_task(self._loop(deliver))

    async def stop(self) -> None:
        """Stop the passes (a pass cut short leaves its SIDs to the next one) and close the watchlist."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.watchlist.close()

    async def run_pass(
        self, deliver: Deliver | None, *, seen_before: float | None = None, seen_after: float | None = None
    ) -> list[Recovery]:
        """One pass: every due SID checked once; `deliver=None` only reports (a dry run)."""
        now = time.time()
        before = seen_before if seen_before is not None else now - self.after
        after = seen_after if seen_after is not None else now - self.max_age
        found: list[Recovery] = []
        checked: set[str] = set()
        while True:
            claimed = await self.watchlist.claim(before, after, self.batch, self.lease)
            fresh = [watched for watched in claimed if watched.sid not in checked]
            for watched in claimed:
                if watched.sid in checked:  # it failed earlier in this pass: the next pass tries again
                    await self.watchlist.release(watched.sid, checked=False)
            if not fresh:
                return found
            for watched in fresh:
                checked.add(watched.sid)
                recovery = await self._check(watched, deliver)
                if recovery is not None:
                    found.append(recovery)
            if deliver is None:
                return found  # a dry run claims one batch and hands it back untouched

    async def _check(self, watched: Watched, deliver: Deliver | None) -> Recovery | None:
        try:
            params = Params.from_pairs(
                await fetch_params(self._client(), watched.channel, watched.sid, watched.account)
            )
        except Exception as exc:  # FetchFailed, or no client (credentials): never a made-up status
            logger.warning("reconcile: could not check %s %s: %s", watched.channel, watched.sid, exc)
            await self.watchlist.release(watched.sid, checked=False)
            return Recovery(watched.channel, watched.sid, watched.status, "", False, error=str(exc))
        callback = recognise(params)
        previous = await self.store.last_status(watched.sid)
        mark = status_mark(watched.channel, callback.status, None)
        later = mark is not None and (previous is None or not is_regression(previous, mark))
        if deliver is None or not later:
            await self.watchlist.release(watched.sid, checked=deliver is not None)
            if later:
                return Recovery(watched.channel, watched.sid, watched.status, callback.status, False)
            return None
        outcome = await deliver(callback, params)
        if outcome == "failed":
            await self.watchlist.release(watched.sid, checked=False)
            return None
        if outcome == "delivered":
            self.recovered += 1
            logger.info(
                "reconcile: %s %s was %s; Twilio reports %s: delivered",
                watched.channel,
                watched.sid,
                watched.status,
                callback.status,
            )
        done = CALL_DONE if watched.channel == "call" else MESSAGE_DONE
        if callback.status in done:
            await self.watchlist.forget(watched.sid)
        else:
            await self.watchlist.release(watched.sid, checked=True)
        delivered = outcome == "delivered"
        return Recovery(watched.channel, watched.sid, watched.status, callback.status, delivered)

    async def _loop(self, deliver: Deliver) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.run_pass(deliver)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the store or the API failed: one line, and try again next time
                logger.error(
                    "reconcile: a pass failed (%s: %s); the next in %.0f s",
                    type(exc).__name__,
                    exc,
                    self.interval,
                )
                logger.debug("reconcile: the failed pass", exc_info=exc)

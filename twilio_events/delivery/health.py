"""The health endpoint's answer: liveness, and in durable mode the queue and whether the store answers."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable
from typing import Any

from starlette.responses import JSONResponse, Response

from ..stores.base import Store, StoreUnavailable

logger = logging.getLogger("twilio_events")


async def health_response(
    store: Store, *, durable: bool, reconcile: tuple[Awaitable[int], int] | None = None
) -> Response:
    """200 with the queue's depth and dead letters, and in durable mode the oldest waiting event's age and
    each consumer's running events and lease expiries (and, with reconciliation, how many calls and
    messages wait for a final status and how many were recovered), or 503 when the store does not answer."""
    body: dict[str, Any] = {"status": "ok", "delivery": "durable" if durable else "inline"}
    try:
        await store.ping()
        stats = await store.stats()
        if reconcile is not None:
            waiting, recovered = reconcile
            body["reconcile"] = {"waiting": await waiting, "recovered": recovered}
    except StoreUnavailable as exc:
        logger.error("health check: the store is unavailable: %s", exc)  # details stay in the log
        body.update(status="unavailable", store="unavailable")
        return JSONResponse(body, status_code=503)
    body.update(store="ok", queued=stats.queued, running=stats.running, dead_letters=stats.dead)
    if durable:
        oldest = stats.oldest_waiting
        body["oldest_waiting_s"] = None if oldest is None else round(max(0.0, time.time() - oldest), 3)
        names = sorted(stats.consumers.keys() | stats.expiries.keys())
        body["consumers"] = {
            name: {"running": stats.consumers.get(name, 0), "lease_expiries": stats.expiries.get(name, 0)}
            for name in names
        }
    return JSONResponse(body)

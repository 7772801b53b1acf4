"""The health endpoint's answer: liveness, and in durable mode the queue and whether the store answers."""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse, Response

from ..stores.base import Store, StoreUnavailable

logger = logging.getLogger("twilio_events")


async def health_response(store: Store, *, durable: bool) -> Response:
    """200 with the queue's depth and dead letters, or 503 when the store does not answer."""
    body: dict[str, Any] = {"status": "ok", "delivery": "durable" if durable else "inline"}
    try:
        await store.ping()
        stats = await store.stats()
    except StoreUnavailable as exc:
        logger.error("health check: the store is unavailable: %s", exc)  # details stay in the log
        body.update(status="unavailable", store="unavailable")
        return JSONResponse(body, status_code=503)
    body.update(store="ok", queued=stats.queued, running=stats.running, dead_letters=stats.dead)
    return JSONResponse(body)

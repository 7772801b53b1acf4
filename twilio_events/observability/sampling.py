"""The gauges read when Prometheus scrapes: the durable queue's counts and the reconciliation watchlist."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from ..stores.base import Store, StoreUnavailable

if TYPE_CHECKING:
    from ..reconcile.watchlist import Watchlist
    from .metrics import Sample

logger = logging.getLogger("twilio_events")


async def sample_stores(store: Store | None, watchlist: Watchlist | None) -> Sample:
    """What the store (durable mode) and the watchlist (reconciliation) hold now; store_up False when
    either did not answer."""
    from .metrics import Sample  # only a scrape, with metrics on, gets here

    sample = Sample(store_up=True)
    try:
        if store is not None:
            stats = await store.stats()
            oldest = stats.extra.get("oldest_waiting_age")
            sample = Sample(
                store_up=True,
                waiting=stats.queued,
                running=stats.running,
                dead=stats.dead,
                oldest_waiting_age=float(oldest) if oldest is not None else None,
            )
        if watchlist is not None:
            sample = dataclasses.replace(sample, reconcile_waiting=await watchlist.count())
    except StoreUnavailable as exc:
        logger.error("metrics: the store is unavailable: %s", exc)
        return Sample(store_up=False)
    return sample

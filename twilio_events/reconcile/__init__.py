"""Reconciliation: the final statuses Twilio's callbacks missed, recovered from the REST API."""

from .fetch import CALL_DONE, MESSAGE_DONE, RECOVERED_PARAM
from .reconciler import Reconciler, Recovery
from .watchlist import MemoryWatchlist, RedisWatchlist, SqliteWatchlist, Watched, Watchlist, watchlist_for

__all__ = [
    "CALL_DONE",
    "MESSAGE_DONE",
    "RECOVERED_PARAM",
    "MemoryWatchlist",
    "Reconciler",
    "Recovery",
    "RedisWatchlist",
    "SqliteWatchlist",
    "Watched",
    "Watchlist",
    "watchlist_for",
]

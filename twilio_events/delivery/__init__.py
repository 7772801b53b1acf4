"""Delivery: running each recognised callback's handler inline or from the store, exactly as promised.

`Dispatcher` is the one door the HTTP edge knows; behind it, `inline` and `durable` deliver, `runner`
runs one handler, `ordering` and `retry` hold the rules, and `workers` takes events from the store.
"""

from .dispatcher import Dispatcher
from .retry import RetryPolicy
from .runner import DeliverySettings

__all__ = ["DeliverySettings", "Dispatcher", "RetryPolicy"]

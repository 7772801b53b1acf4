"""What the server modules share: the port argument and how the uvicorn rows are served."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ..payload import HOST

if TYPE_CHECKING:
    from twilio_events import TwilioEvents
    from twilio_events.stores import Store


def port_from_argv() -> int:
    """The port given as the only command-line argument."""
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise SystemExit("usage: python -m bench.servers.<module> PORT")
    return int(sys.argv[1])


def run_uvicorn(app: Any) -> None:
    """Serve an ASGI app as twilio_events serves itself: uvloop, httptools, no access log, one process."""
    import uvicorn  # here, not at import time: gunicorn's row never needs it

    uvicorn.run(
        app,
        host=HOST,
        port=port_from_argv(),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )


def durable_app(port: int, store: Store) -> TwilioEvents:
    """Rows 6a and 6b: row 4's app (signatures validated, async no-op handlers) with durable delivery:
    each callback is committed to `store` before it is acknowledged, and the app's workers run it."""
    from .twilio_events_async import create_app

    return create_app(port, delivery="durable", store=store)

"""What the server modules share: the port argument and how the uvicorn rows are served."""

from __future__ import annotations

import sys
from typing import Any

from ..payload import HOST


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

"""Row 7: row 4's app with Prometheus metrics on (counters and a handler histogram per callback)."""

from __future__ import annotations

from .common import port_from_argv
from .twilio_events_async import create_app

if __name__ == "__main__":
    create_app(port_from_argv(), metrics=True).run(log_level="warning")

"""Row 6a: twilio_events, durable delivery to SQLite (WAL, fsync on every commit), async no-op handler.

The callback is committed to a SQLite file in a temporary directory before it is acknowledged, and the
app's workers run the handler from there. The directory is deleted when the server stops.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from twilio_events.stores.sqlite import SqliteStore

from .common import durable_app, port_from_argv


def main() -> None:
    port = port_from_argv()
    with tempfile.TemporaryDirectory(prefix="twilio-events-bench-sqlite-") as directory:
        store = SqliteStore(Path(directory) / "events.db")
        durable_app(port, store).run(log_level="warning")


if __name__ == "__main__":
    main()

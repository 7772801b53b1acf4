"""Row 6b: twilio_events, durable delivery to Redis, async no-op handler.

Starts its own redis-server on a free port of 127.0.0.1, with `appendonly yes` and `appendfsync always`
(every write on disk before Redis answers) and its files in a temporary directory, as a child process:
it inherits this server's CPU and priority, and the harness counts its CPU time with the row's.
"""

from __future__ import annotations

import tempfile

from twilio_events.stores.redis import RedisStore

from .common import durable_app, port_from_argv
from .redis_server import start_redis, stop


def main() -> None:
    port = port_from_argv()
    with tempfile.TemporaryDirectory(prefix="twilio-events-bench-redis-") as directory:
        process, url = start_redis(directory)
        try:
            durable_app(port, RedisStore(url)).run(log_level="warning")
        finally:
            stop(process)


if __name__ == "__main__":
    main()

"""A durable TwilioEvents service for the delivery tests, run in its own process: `python durable_app.py`.

Configured by environment variables:

    DURABLE_APP_PORT         the port to listen on, on 127.0.0.1 (required)
    DURABLE_APP_LOG          the file every handler run is recorded in (required)
    DURABLE_APP_STORE        the store URL (default sqlite:///events.db in the working directory)
    DURABLE_APP_GATE         the file a blocking event waits for (default: DURABLE_APP_LOG + ".gate")
    DURABLE_APP_WORKERS, DURABLE_APP_MAX_ATTEMPTS, DURABLE_APP_LEASE,
    DURABLE_APP_SHUTDOWN_GRACE   as TwilioEvents' parameters (default: TwilioEvents' defaults)
    DURABLE_APP_CONSUMER     TwilioEvents' `consumer` (default: the host name)
    DURABLE_APP_ORDERING     TwilioEvents' `ordering` ("monotonic"; default: none)
    DURABLE_APP_DELIVERY     TwilioEvents' `delivery` (default durable)
    DURABLE_APP_FSYNC        1 (default): fsync the record after each line; 0: flush only
    DURABLE_APP_PUBLIC_URL   the URL signatures are validated for (default: the URL of each request)
    DURABLE_APP_AUTH_TOKEN   default test-auth-token
    DURABLE_APP_LOG_LEVEL    default warning

The handler takes every call and message status callback. It appends "start KEY PID" to the log, then
waits: `Sleep=SECONDS` in the callback's form sleeps that long, `Block=1` waits until the gate file exists;
then it appends "done KEY PID" (KEY is the event's idempotency key, PID this process).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from twilio_events import CallEvent, Listener, SmsEvent, TwilioEvents

PORT = int(os.environ["DURABLE_APP_PORT"])
LOG = Path(os.environ["DURABLE_APP_LOG"])
GATE = Path(os.environ.get("DURABLE_APP_GATE") or f"{LOG}.gate")
FSYNC = os.environ.get("DURABLE_APP_FSYNC", "1") == "1"
PID = os.getpid()


NUMBERS = {"workers": int, "max_attempts": int, "lease": float, "shutdown_grace": float}
"""TwilioEvents' numeric parameters, set from DURABLE_APP_<NAME> when given (else its defaults)."""
numbers = {
    name: convert(os.environ[f"DURABLE_APP_{name.upper()}"])
    for name, convert in NUMBERS.items()
    if os.environ.get(f"DURABLE_APP_{name.upper()}")
}

app = TwilioEvents(
    auth_token=os.environ.get("DURABLE_APP_AUTH_TOKEN", "test-auth-token"),
    public_url=os.environ.get("DURABLE_APP_PUBLIC_URL") or None,
    delivery=os.environ.get("DURABLE_APP_DELIVERY") or "durable",
    ordering=os.environ.get("DURABLE_APP_ORDERING") or None,
    store=os.environ.get("DURABLE_APP_STORE") or "sqlite:///events.db",
    listeners=[Listener(PORT, "durable", host="127.0.0.1")],
    consumer=os.environ.get("DURABLE_APP_CONSUMER") or None,
    **numbers,
)

_log = LOG.open("a", encoding="utf-8")


def record(what: str, key: str | None) -> None:
    """One line, written (and by default fsynced) before the handler goes on: a SIGKILL cannot lose it."""
    _log.write(f"{what} {key} {PID}\n")
    _log.flush()
    if FSYNC:
        os.fsync(_log.fileno())


async def handle(event: CallEvent | SmsEvent) -> None:
    key = event.idempotency_key
    record("start", key)
    sleep = event.raw.get("Sleep")
    if sleep:
        await asyncio.sleep(float(sleep))
    if event.raw.get("Block") == "1":
        while not GATE.exists():
            await asyncio.sleep(0.02)
    record("done", key)


app.call.on_any(handle)
app.sms.on_any(handle)


if __name__ == "__main__":
    app.run(log_level=os.environ.get("DURABLE_APP_LOG_LEVEL", "warning"))

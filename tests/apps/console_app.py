"""A service for the console's browser tests, served by `twilio-events run --console`.

Durable (with a failing first run of each call's `completed`, so that it is dead-lettered once) when
CONSOLE_APP_STORE names a store; inline otherwise. TWILIO_AUTH_TOKEN signs and checks every callback.
"""

from __future__ import annotations

import os

from twilio_events import CallEvent, TwilioEvents

STORE = os.environ.get("CONSOLE_APP_STORE")

app = (
    TwilioEvents(delivery="durable", store=STORE, max_attempts=1, retry_delay=0.05)
    if STORE
    else TwilioEvents()
)
failed_once: set[str] = set()


@app.call.on_initiated
def call_initiated(event: CallEvent) -> None:
    print(f"{event.call_sid} initiated", flush=True)


@app.call.on_ringing
def call_ringing(event: CallEvent) -> None:
    print(f"{event.call_sid} ringing", flush=True)


@app.call.on_in_progress
def call_answered(event: CallEvent) -> None:
    print(f"{event.call_sid} answered", flush=True)


@app.call.on_completed
def call_completed(event: CallEvent) -> None:
    if STORE and event.call_sid not in failed_once:
        failed_once.add(event.call_sid)
        raise RuntimeError("the CRM did not answer")
    print(f"{event.call_sid} completed after {event.call_duration} s", flush=True)

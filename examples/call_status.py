"""A call-status service: one handler per Twilio call status.

Run it with `make run`, `twilio-events run examples/call_status.py` or `python examples/call_status.py`
(port 8090, listener "twilioListener"; TWILIO_EVENTS_PORT to change the port), or with
`uvicorn examples.call_status:app --port 8090`. Point a call's status callback URL at it.
"""

from __future__ import annotations

from twilio_events import CallEvent, TwilioEvents

app = TwilioEvents()  # listener "twilioListener" on port 8090 (or TWILIO_EVENTS_PORT)


def show(event: CallEvent, what: str) -> None:
    print(f"{event.call_sid} {event.from_} -> {event.to}: {what}", flush=True)


@app.call.on_queued
@app.call.on_initiated
def on_dialing(event: CallEvent) -> None:
    show(event, f"{event.status}, {event.direction} call")


@app.call.on_ringing
def on_ringing(event: CallEvent) -> None:
    show(event, "ringing")


@app.call.on_in_progress
def on_in_progress(event: CallEvent) -> None:
    show(event, "answered")


@app.call.on_completed
async def on_completed(event: CallEvent) -> None:
    show(event, f"completed after {event.call_duration} s")


@app.call.on_busy
@app.call.on_no_answer
@app.call.on_failed
@app.call.on_canceled
def on_not_connected(event: CallEvent) -> None:
    show(event, f"not connected: {event.status} (SIP {event.sip_response_code})")


if __name__ == "__main__":
    app.run()

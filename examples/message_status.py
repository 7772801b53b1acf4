"""A message-status service: follow each message you send from queued to delivered (or not).

Run it with `python examples/message_status.py` (port 8090) or `uvicorn examples.message_status:app`, and
pass its URL as `status_callback` when you send a message, or set it on your Messaging Service.
"""

from __future__ import annotations

from twilio_events import SmsEvent, TwilioEvents

app = TwilioEvents()


@app.sms.on_delivered
def on_delivered(event: SmsEvent) -> None:
    print(f"{event.message_sid} delivered to {event.to}", flush=True)


@app.sms.on_undelivered
@app.sms.on_failed
def on_not_delivered(event: SmsEvent) -> None:
    # https://www.twilio.com/docs/api/errors/<code> explains each ErrorCode.
    print(f"{event.message_sid} to {event.to} {event.status}: error {event.error_code}", flush=True)


@app.sms.on_any
def on_progress(event: SmsEvent) -> None:
    # accepted, queued, sending, sent, ...: Twilio does not promise their order, so only note them.
    print(f"{event.message_sid} is {event.status}", flush=True)


if __name__ == "__main__":
    app.run()

"""Reply to every incoming message: set your number's "A MESSAGE COMES IN" webhook to this service.

Run it with `python examples/inbound_sms.py` (port 8090) or `uvicorn examples.inbound_sms:app`.
"""

from __future__ import annotations

from twilio.twiml.messaging_response import MessagingResponse

from twilio_events import SmsEvent, TwilioEvents

app = TwilioEvents()


@app.sms.on_received
def auto_reply(event: SmsEvent) -> MessagingResponse | None:
    if not event.is_inbound:
        return None  # a status callback saying a message was received: nothing to answer
    reply = MessagingResponse()
    text = f'Thanks, we got your message: "{event.body}"'
    if event.media:
        text += f" and {len(event.media)} attachment(s)"
    reply.message(text)
    return reply


if __name__ == "__main__":
    app.run()

"""A FastAPI app with its own routes and twilio_events mounted under /twilio.

Run it with `python examples/mounted_fastapi.py`, `twilio-events run examples/mounted_fastapi.py` or
`uvicorn examples.mounted_fastapi:app --port 8090`.
Twilio's callback URL is then https://<your-host>/twilio/ (with the trailing slash), and
GET /calls/<CallSid> shows the last status seen for a call.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, HTTPException

from twilio_events import CallEvent, TwilioEvents

events = TwilioEvents()
app = FastAPI(lifespan=events.lifespan)  # twilio_events logs its start-up line (and warnings)
app.mount("/twilio", events)

last_status: dict[str, str] = {}  # CallSid -> status; use a real store in production


@events.call.on_any
def record(event: CallEvent) -> None:
    last_status[event.call_sid] = str(event.status)


@app.get("/calls/{call_sid}")
def call_status(call_sid: str) -> dict[str, str]:
    if call_sid not in last_status:
        raise HTTPException(status_code=404, detail="no callback seen for this call")
    return {"call_sid": call_sid, "status": last_status[call_sid]}


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, port=int(os.environ.get("TWILIO_EVENTS_PORT", "8090")))

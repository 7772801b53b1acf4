"""Handlers mypy --strict accepts, each keeping its own type once decorated (checked by test_typing.py)."""

from __future__ import annotations

from typing import assert_type

from starlette.responses import HTMLResponse, Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from twilio_events import (
    AmdEvent,
    CallEvent,
    CallStatus,
    ConferenceEvent,
    Event,
    RecordingEvent,
    SmsEvent,
    TranscriptionEvent,
    TwilioEvents,
    UnknownStatus,
)
from twilio_events.events import StreamEvent

app = TwilioEvents()


@app.call.on_completed
def call_ended(event: CallEvent, retries: int = 3) -> None:
    assert_type(event.status, CallStatus | UnknownStatus)
    assert_type(event.status.is_terminal, bool)
    assert_type(str(event.status), str)
    if event.status == "completed" and event.status.value == "completed":
        print(retries)


assert_type(call_ended(event=CallEvent(), retries=1), None)  # its names and defaults are kept


@app.sms.on_undelivered
async def not_delivered(event: SmsEvent) -> None:
    print(event.status.is_terminal)


async def async_handlers_stay_async() -> None:
    assert_type(await not_delivered(event=SmsEvent()), None)


@app.call.on_incoming
def menu(event: CallEvent) -> VoiceResponse:
    return VoiceResponse()


@app.sms.on_received
async def reply(event: SmsEvent) -> MessagingResponse:
    return MessagingResponse()


@app.recording.on_completed
def stored(event: RecordingEvent) -> Response | None:
    return HTMLResponse("") if event.status.is_terminal else None


@app.transcription.on_any
def transcribed(event: TranscriptionEvent) -> bytes:
    return str(event.status.is_terminal).encode()


@app.conference.on("mute")
def muted(event: ConferenceEvent) -> str:
    return "" if event.status.is_terminal else "<Response/>"


@app.amd.on_machine_end_beep
def machine(event: AmdEvent) -> None:
    print(event.status.is_machine, event.answered_by.is_machine)


@app.streams.on("com.twilio.voice.insights.call-summary.complete")
def summary(event: StreamEvent) -> None:
    print(event.data)


@app.call.on_busy
@app.sms.on_failed
def either(event: CallEvent | SmsEvent) -> None:
    print(event.status.is_terminal)


@app.on_error
async def failed(event: Event, exc: Exception) -> Response | None:
    return None


app.call.on_no_answer(print)
assert_type(app.call.on_canceled(either)(event=SmsEvent()), None)

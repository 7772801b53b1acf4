"""Handlers mypy --strict refuses, each at the line marked `# error: <code>` (checked by test_typing.py)."""

from __future__ import annotations

from twilio_events import AmdEvent, CallEvent, Event, SmsEvent, TwilioEvents

app = TwilioEvents()


@app.call.on_completed  # error: type-var
def message_handler_on_a_call_status(event: SmsEvent) -> None:
    print(event.message_sid)


@app.call.on_completed  # error: type-var
def returns_an_int(event: CallEvent) -> int:
    return 1


@app.sms.on_delivered  # error: type-var
async def async_returns_an_int(event: SmsEvent) -> int:
    return 1


@app.call.on("busy")  # error: type-var
def on_with_the_wrong_event(event: SmsEvent) -> None:
    print(event.body)


@app.sms.on_any  # error: type-var
def fallback_with_the_wrong_event(event: CallEvent) -> None:
    print(event.call_sid)


@app.call.on_gather  # error: type-var
def webhook_with_the_wrong_event(event: SmsEvent) -> str:
    return ""


@app.on_error  # error: type-var
def hook_of_one_channel(event: CallEvent, exc: Exception) -> None:
    print(exc)


@app.on_error  # error: type-var
def hook_without_the_exception(event: Event) -> None:
    print(event)


@app.amd.on_human
def amd_has_no_terminal_status(event: AmdEvent) -> None:
    print(event.status.is_terminal)  # error: union-attr

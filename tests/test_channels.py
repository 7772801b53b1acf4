"""Channels: registering handlers per status, with plain function calls and no I/O."""

from __future__ import annotations

import asyncio
import enum
import functools
import logging
import threading
from collections.abc import Awaitable
from typing import Any

import pytest

from twilio_events import (
    AnsweredBy,
    CallEvent,
    CallStatus,
    ConferenceEventType,
    HandlerAlreadyRegistered,
    RecordingStatus,
    SmsEvent,
    SmsStatus,
    TranscriptionStatus,
    TwilioEvents,
)
from twilio_events.channels import (
    CallChannel,
    Channel,
    Handler,
    SmsChannel,
    _StatusDecorator,
    _WebhookDecorator,
)
from twilio_events.channels_voice import AmdChannel, ConferenceChannel, RecordingChannel, TranscriptionChannel


def run(awaitable: Awaitable[Any]) -> Any:
    """Await `awaitable` on a fresh event loop in this (the main) thread."""

    async def main() -> Any:
        return await awaitable

    return asyncio.run(main())


def _decorator_name(status: CallStatus | SmsStatus) -> str:
    return "on_" + status.value.replace("-", "_")


@pytest.mark.parametrize(
    ("channel_type", "status"),
    [(CallChannel, s) for s in CallStatus] + [(SmsChannel, s) for s in SmsStatus],
)
def test_every_status_has_a_decorator_registering_it(
    channel_type: type[CallChannel] | type[SmsChannel], status: CallStatus | SmsStatus
) -> None:
    channel = channel_type()

    def handler(event: Any) -> None:
        pass

    returned = getattr(channel, _decorator_name(status))(handler)

    assert returned is handler
    assert list(channel.handlers) == [status.value]
    assert channel.handler_for(status) is not None
    assert channel.handler_for(status).function is handler  # type: ignore[union-attr]
    assert channel.handler_for(status.value).function is handler  # type: ignore[union-attr]


def test_there_are_no_other_status_decorators() -> None:
    call = {name for name, value in vars(CallChannel).items() if isinstance(value, _StatusDecorator)}
    sms = {name for name in vars(SmsChannel) if name.startswith("on_")}

    assert call == {_decorator_name(s) for s in CallStatus}
    assert sms == {_decorator_name(s) for s in SmsStatus}


def test_the_call_channel_has_one_decorator_per_voice_webhook() -> None:
    webhooks = {name for name, value in vars(CallChannel).items() if isinstance(value, _WebhookDecorator)}

    assert webhooks == {
        "on_incoming",
        "on_gather",
        "on_gather_partial",
        "on_dial_action",
        "on_record_action",
        "on_pay_action",
    }


def test_decorators_are_documented_on_the_class() -> None:
    assert CallChannel.on_no_answer.__doc__ == "Register the decorated function for status 'no-answer'."
    assert SmsChannel.on_partially_delivered.status is SmsStatus.PARTIALLY_DELIVERED


def test_decorators_return_the_function_unchanged() -> None:
    app = TwilioEvents(validate_signature=False)

    async def on_answer(event: CallEvent) -> str:
        return "answered"

    def fallback(event: SmsEvent) -> None:
        return None

    assert app.call.on_in_progress(on_answer) is on_answer
    assert app.call.on("busy")(on_answer) is on_answer
    assert app.sms.on(SmsStatus.READ)(fallback) is fallback
    assert app.sms.on_any(fallback) is fallback
    assert app.on_error(fallback) is fallback
    assert asyncio.run(on_answer(CallEvent())) == "answered"


def test_plain_calls_register_like_decorators() -> None:
    channel = CallChannel()

    def ringing(event: CallEvent) -> None:
        pass

    channel.on_ringing(ringing)
    channel.on("no-answer")(ringing)
    channel.on(CallStatus.FAILED)(ringing)

    assert sorted(channel.handlers) == ["failed", "no-answer", "ringing"]
    assert {h.function for h in channel.handlers.values()} == {ringing}


def test_a_duplicate_handler_raises() -> None:
    channel = CallChannel()

    def first(event: CallEvent) -> None:
        pass

    def second(event: CallEvent) -> None:
        pass

    channel.on_busy(first)
    for register in (channel.on_busy, channel.on("busy"), channel.on(CallStatus.BUSY)):
        with pytest.raises(HandlerAlreadyRegistered) as raised:
            register(second)
        message = str(raised.value)
        assert "app.call already has a handler for status 'busy'" in message
        assert "first" in message
        assert "second" in message

    assert channel.handler_for("busy").function is first  # type: ignore[union-attr]


def test_a_duplicate_on_any_raises() -> None:
    channel = SmsChannel()
    channel.on_any(lambda event: None)

    with pytest.raises(HandlerAlreadyRegistered, match=r"app\.sms already has a handler for on_any"):
        channel.on_any(lambda event: None)


def test_handler_already_registered_is_a_value_error() -> None:
    assert issubclass(HandlerAlreadyRegistered, ValueError)


def test_the_channels_of_one_app_are_independent() -> None:
    app = TwilioEvents(validate_signature=False)

    def handler(event: Any) -> None:
        pass

    app.call.on_queued(handler)
    app.sms.on_queued(handler)
    app.call.on_canceled(handler)
    app.sms.on_canceled(handler)

    assert sorted(app.call.handlers) == ["canceled", "queued"]
    assert sorted(app.sms.handlers) == ["canceled", "queued"]
    assert TwilioEvents(validate_signature=False).call.handlers == {}


@pytest.mark.parametrize("status", ["", "*"])
def test_not_a_status(status: str) -> None:
    with pytest.raises(ValueError, match="not a call status"):
        CallChannel().on(status)


def test_an_undocumented_status_warns_but_registers(caplog: pytest.LogCaptureFixture) -> None:
    channel = SmsChannel()

    channel.on("partially-delivered")(lambda event: None)

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "app.sms.on('partially-delivered'): Twilio documents no such status" in record.getMessage()
    assert channel.handler_for("partially-delivered") is not None


def test_known_statuses_register_silently(caplog: pytest.LogCaptureFixture) -> None:
    SmsChannel().on("partially_delivered")(lambda event: None)

    assert caplog.records == []


def test_a_handler_must_be_callable() -> None:
    with pytest.raises(TypeError, match="a handler must be callable"):
        CallChannel().on_ringing("not a function")  # type: ignore[type-var]


def test_handler_for_falls_back_to_on_any() -> None:
    channel = CallChannel()

    def ringing(event: CallEvent) -> None:
        pass

    def anything(event: CallEvent) -> None:
        pass

    assert channel.handler_for("ringing") is None
    channel.on_ringing(ringing)
    assert channel.handler_for("busy") is None
    channel.on_any(anything)

    assert channel.handler_for(CallStatus.RINGING).function is ringing  # type: ignore[union-attr]
    assert channel.handler_for("busy").function is anything  # type: ignore[union-attr]
    assert channel.handler_for("made-up").function is anything  # type: ignore[union-attr]
    assert channel.handlers["*"].function is anything


def test_handlers_is_a_copy() -> None:
    channel = CallChannel()
    channel.handlers["ringing"] = Handler.wrap(lambda event: None)

    assert channel.handlers == {}


def test_channel_names() -> None:
    assert (CallChannel().name, SmsChannel().name) == ("call", "sms")
    assert (CallChannel().status_type, SmsChannel().status_type) == (CallStatus, SmsStatus)


# --- sync and async handlers ------------------------------------------------------------------------------


def test_an_async_handler_is_awaited_on_the_event_loop() -> None:
    seen: list[str] = []

    async def handler(event: str) -> str:
        seen.append(threading.current_thread().name)
        return f"async {event}"

    wrapped = Handler.wrap(handler)

    assert wrapped.call is handler
    assert run(wrapped.call("x")) == "async x"
    assert seen == [threading.main_thread().name]


def test_a_sync_handler_runs_in_a_worker_thread() -> None:
    seen: list[threading.Thread] = []

    def handler(event: str) -> str:
        seen.append(threading.current_thread())
        return f"sync {event}"

    wrapped = Handler.wrap(handler)

    assert run(wrapped.call("x")) == "sync x"
    assert seen[0] is not threading.main_thread()


def test_async_callables_are_recognised_through_partials_and_objects() -> None:
    class Callback:
        async def __call__(self, event: str, prefix: str = "") -> str:
            return prefix + event

    async def greet(event: str, greeting: str) -> str:
        return f"{greeting} {event}"

    partial = functools.partial(functools.partial(greet, greeting="hi"))
    callback = Callback()

    assert Handler.wrap(partial).call is partial
    assert Handler.wrap(callback).call is callback
    assert run(Handler.wrap(partial).call("ada")) == "hi ada"
    assert run(Handler.wrap(callback).call("ada", "hello ")) == "hello ada"


def test_handler_names_are_qualified() -> None:
    def local(event: Any) -> None:
        pass

    class Callable_:
        def __call__(self, event: Any) -> None:
            pass

    assert Handler.wrap(local).name.endswith("test_handler_names_are_qualified.<locals>.local")
    assert "Callable_ object" in Handler.wrap(Callable_()).name


# --- the channels of recordings, transcriptions, conferences and AMD results -------------------------------

VOICE_CHANNELS: list[tuple[type[Channel[Any, Any]], type[enum.StrEnum]]] = [
    (RecordingChannel, RecordingStatus),
    (TranscriptionChannel, TranscriptionStatus),
    (ConferenceChannel, ConferenceEventType),
    (AmdChannel, AnsweredBy),
]


@pytest.mark.parametrize(
    ("channel_type", "status"),
    [(channel, status) for channel, statuses in VOICE_CHANNELS for status in statuses],
    ids=str,
)
def test_every_status_of_the_new_channels_has_its_decorator(
    channel_type: type[Channel[Any, Any]], status: enum.StrEnum
) -> None:
    channel = channel_type()

    def handler(event: Any) -> None:
        pass

    assert getattr(channel, "on_" + status.name.lower())(handler) is handler
    assert channel.handlers == {status.value: channel.handler_for(status.value)}
    assert channel.event_type.__name__.endswith("Event")


def test_the_new_channels_declare_exactly_one_decorator_per_status() -> None:
    for channel_type, statuses in VOICE_CHANNELS:
        declared = {name for name, value in vars(channel_type).items() if isinstance(value, _StatusDecorator)}
        assert declared == {"on_" + status.name.lower() for status in statuses}, channel_type


def test_a_status_the_class_body_leaves_out_gets_its_decorator_from_the_enum() -> None:
    class Partial(Channel[Any, RecordingStatus]):
        name = "recording"
        event_type = RecordingChannel.event_type
        status_type = RecordingStatus

        on_completed = _StatusDecorator(RecordingStatus.COMPLETED)

    assert {name for name in vars(Partial) if name.startswith("on_")} == {
        "on_in_progress",
        "on_completed",
        "on_absent",
        "on_failed",
    }
    channel = Partial()
    channel.on_absent(print)  # type: ignore[attr-defined]
    assert list(channel.handlers) == ["absent"]


def test_a_conference_subscription_name_registers_every_event_it_sends() -> None:
    app = TwilioEvents(auth_token="t")

    def handler(event: Any) -> None:
        pass

    assert app.conference.on("mute")(handler) is handler
    app.conference.on("speaker")(handler)
    app.conference.on("join")(handler)

    assert set(app.conference.handlers) == {
        "participant-mute",
        "participant-unmute",
        "participant-speech-start",
        "participant-speech-stop",
        "participant-join",
    }
    with pytest.raises(HandlerAlreadyRegistered):
        app.conference.on("hold")(print)
        app.conference.on("participant-unhold")(print)  # the alias took it
    fresh = TwilioEvents(auth_token="t").conference
    fresh.on_participant_unmute(print)
    with pytest.raises(HandlerAlreadyRegistered):
        fresh.on("mute")(handler)
    assert list(fresh.handlers) == ["participant-unmute"], "nothing of a refused alias is registered"


def test_answered_is_the_in_progress_status_of_a_call(caplog: pytest.LogCaptureFixture) -> None:
    app = TwilioEvents(auth_token="t")

    app.call.on("answered")(print)

    assert list(app.call.handlers) == ["in-progress"]
    assert "documents no such status" not in caplog.text


def test_every_channel_of_the_app_by_name() -> None:
    app = TwilioEvents(auth_token="t")

    assert list(app.channels) == ["call", "sms", "recording", "transcription", "conference", "amd", "streams"]
    assert app.channels["recording"] is app.recording and app.recording.name == "recording"

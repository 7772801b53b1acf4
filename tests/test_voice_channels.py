"""Recordings, transcriptions, conferences and answering machine detection results over a real uvicorn
server: every decorator, inline and durable (a real SQLite file), duplicates run once, ordering holds;
and WhatsApp's extras on the message channel.

Requests are signed with twilio's RequestValidator and shaped like `twilio_events.testing`'s factories,
which follow the parameters Twilio documents for each callback.
"""

from __future__ import annotations

import enum
import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from twilio_events import (
    AmdEvent,
    AnsweredBy,
    ConferenceEvent,
    ConferenceEventType,
    Event,
    RecordingEvent,
    RecordingStatus,
    SmsEvent,
    SmsStatus,
    TranscriptionEvent,
    TranscriptionStatus,
    TwilioEvents,
)
from twilio_events.channels import Channel
from twilio_events.payloads import Payload
from twilio_events.testing import (
    amd_payload,
    conference_payload,
    conference_with_two_participants,
    recorded_call,
    recording_status_payload,
    sms_payload,
    transcription_payload,
    whatsapp_payload,
)

from .conftest import TOKEN, LiveServer, wait_for

TOKEN_HEADER = "I-Twilio-Idempotency-Token"


class Recorder:
    """What the handlers were called with, in order: (handler name, event)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Event]] = []
        self._lock = threading.Lock()

    def handler(self, name: str) -> Callable[[Event], None]:
        def record(event: Event) -> None:
            with self._lock:
                self.calls.append((name, event))

        record.__qualname__ = name.replace(":", "_").replace("-", "_")
        return record

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, _ in self.calls]


VOICE_CHANNELS: dict[str, tuple[type[enum.StrEnum], type[Any]]] = {
    "recording": (RecordingStatus, RecordingEvent),
    "transcription": (TranscriptionStatus, TranscriptionEvent),
    "conference": (ConferenceEventType, ConferenceEvent),
    "amd": (AnsweredBy, AmdEvent),
}


def payload_for(channel: str, status: str, **overrides: str) -> Payload:
    """One callback of `channel` with `status`, built by the public factory for that kind."""
    if channel == "recording":
        return recording_status_payload(status, **overrides)
    if channel == "transcription":
        return transcription_payload(status=status, **overrides)
    if channel == "conference":
        return conference_payload(status, **overrides)
    return amd_payload(status, **overrides)


def every_decorator_app(recorder: Recorder, **config: Any) -> TwilioEvents:
    """An app with a handler registered through every `on_<status>` decorator of the four channels."""
    app = TwilioEvents(auth_token=TOKEN, **config)
    for name, (status_type, _) in VOICE_CHANNELS.items():
        channel: Channel[Any, Any] = app.channels[name]
        for status in status_type:
            decorator = getattr(channel, f"on_{status.name.lower()}")
            assert decorator(recorder.handler(f"{name}:{status.value}")) is not None
    return app


@pytest.fixture
def start(serve: Callable[..., LiveServer], tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    def run(
        delivery: str, build: Callable[..., TwilioEvents], recorder: Recorder, **config: Any
    ) -> LiveServer:
        if delivery == "durable":
            config.update(delivery="durable", store=f"sqlite:///{tmp_path / 'events.db'}", retry_delay=0.05)
        return serve(build(recorder, **config))

    yield run


def post(live: LiveServer, payload: Payload, token: str | None = None) -> int:
    answer = live.callback(payload, headers={TOKEN_HEADER: token} if token else None)
    return answer.status_code


def post_and_wait(live: LiveServer, recorder: Recorder, payload: Payload) -> None:
    """Post one callback and wait for its handler to run (durable delivery runs it after the answer)."""
    before = len(recorder.calls)
    assert post(live, payload, str(uuid.uuid4())) == 200
    wait_for(lambda: len(recorder.calls) == before + 1, f"the handler of {payload}")


def post_skipped(live: LiveServer, caplog: pytest.LogCaptureFixture, payload: Payload) -> None:
    """Post one callback that ordering must skip, and wait until it was (the log says so)."""
    before = caplog.text.count("acknowledged, not dispatched")
    assert post(live, payload, str(uuid.uuid4())) == 200
    wait_for(lambda: caplog.text.count("acknowledged, not dispatched") == before + 1, "the skip")


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_every_new_decorator_receives_its_status_with_a_typed_event(
    start: Callable[..., LiveServer], delivery: str
) -> None:
    recorder = Recorder()
    live = start(delivery, every_decorator_app, recorder)
    sent = [
        (f"{name}:{status.value}", payload_for(name, status.value))
        for name, (status_type, _) in VOICE_CHANNELS.items()
        for status in status_type
    ]

    answers = [post(live, payload, str(uuid.uuid4())) for _, payload in sent]

    assert answers == [200] * len(sent)
    wait_for(lambda: sorted(recorder.names()) == sorted(label for label, _ in sent), "every handler once")
    by_name = dict(recorder.calls)
    for label, payload in sent:
        channel, _, status = label.partition(":")
        status_type, event_type = VOICE_CHANNELS[channel]
        event = by_name[label]
        assert type(event) is event_type
        assert event.status == status and isinstance(event.status, status_type)
        assert event.raw["AccountSid"] == payload["AccountSid"]
        assert event.idempotency_key is not None and event.idempotency_key.startswith("token:")
    recording = by_name["recording:completed"]
    assert isinstance(recording, RecordingEvent)
    assert recording.sid == recording.recording_sid and recording.recording_duration == 9
    conference = by_name["conference:participant-mute"]
    assert isinstance(conference, ConferenceEvent) and conference.muted is True
    amd = by_name["amd:machine_end_beep"]
    assert isinstance(amd, AmdEvent) and amd.machine_detection_duration == 2340 and amd.status.is_machine


@pytest.mark.parametrize("delivery", ["inline", "durable"])
@pytest.mark.parametrize("with_token", [True, False], ids=["same-token", "same-key-without-token"])
@pytest.mark.parametrize(
    ("channel", "status"),
    [
        ("recording", "completed"),
        ("transcription", "completed"),
        ("conference", "participant-join"),
        ("amd", "human"),
    ],
)
def test_a_duplicate_runs_once(
    start: Callable[..., LiveServer],
    caplog: pytest.LogCaptureFixture,
    delivery: str,
    with_token: bool,
    channel: str,
    status: str,
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    recorder = Recorder()
    live = start(delivery, every_decorator_app, recorder)
    payload = payload_for(channel, status)
    token = str(uuid.uuid4()) if with_token else None

    answers = [post(live, payload, token) for _ in range(3)]

    assert answers == [200, 200, 200]
    wait_for(lambda: recorder.names() == [f"{channel}:{status}"], "the handler to run")
    duplicate = f"duplicate {channel} callback"
    wait_for(lambda: caplog.text.count(duplicate) == 2, "both copies to be recognised as duplicates")
    assert recorder.names() == [f"{channel}:{status}"]
    key = recorder.calls[0][1].idempotency_key
    assert key is not None
    assert key == f"token:{token}" if with_token else key.startswith(f"{channel}:")


def ordered_app(recorder: Recorder, **config: Any) -> TwilioEvents:
    app = every_decorator_app(recorder, ordering="monotonic", **config)
    return app


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_a_recording_in_progress_after_its_completion_is_not_dispatched(
    start: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture, delivery: str
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    recorder = Recorder()
    live = start(delivery, ordered_app, recorder)
    sid = {"RecordingSid": "RE" + uuid.uuid4().hex}
    other = {"RecordingSid": "RE" + uuid.uuid4().hex}

    post_and_wait(live, recorder, recording_status_payload("completed", **sid))
    post_skipped(live, caplog, recording_status_payload("in-progress", **sid))
    post_skipped(live, caplog, recording_status_payload("absent", **sid))
    post_and_wait(live, recorder, recording_status_payload("in-progress", **other))
    post_and_wait(live, recorder, recording_status_payload("completed", **other))

    assert recorder.names() == ["recording:completed", "recording:in-progress", "recording:completed"]
    assert [event.previous_status for _, event in recorder.calls] == [None, None, "in-progress"]
    assert f"recording {sid['RecordingSid']} in-progress arrived after completed" in caplog.text


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_a_transcription_in_progress_after_its_completion_is_not_dispatched(
    start: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture, delivery: str
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    recorder = Recorder()
    live = start(delivery, ordered_app, recorder)
    sid = {"TranscriptionSid": "TR" + uuid.uuid4().hex}

    post_and_wait(live, recorder, transcription_payload(status="in-progress", **sid))
    post_and_wait(live, recorder, transcription_payload(status="completed", **sid))
    post_skipped(live, caplog, transcription_payload(status="in-progress", **sid))
    post_skipped(live, caplog, transcription_payload(status="failed", **sid))

    assert recorder.names() == ["transcription:in-progress", "transcription:completed"]
    assert recorder.calls[1][1].previous_status == "in-progress"


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_conference_callbacks_are_ordered_by_their_sequence_number(
    start: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture, delivery: str
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    recorder = Recorder()
    live = start(delivery, ordered_app, recorder)
    story = conference_with_two_participants()

    for payload in [*story[:2], story[3]]:
        post_and_wait(live, recorder, payload)
    post_skipped(live, caplog, story[2])  # conference-start (3), delivered after the mute (4)
    for payload in story[4:]:
        post_and_wait(live, recorder, payload)

    assert [event.sequence_number for _, event in recorder.calls] == [1, 2, 4, 5, 6, 7, 8]
    assert recorder.names()[-1] == "conference:conference-end"
    assert recorder.calls[-1][1].previous_status == "participant-leave"
    assert "conference:conference-start" not in recorder.names()


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_without_ordering_every_conference_callback_runs_whatever_the_order(
    start: Callable[..., LiveServer], delivery: str
) -> None:
    recorder = Recorder()
    live = start(delivery, every_decorator_app, recorder)
    story = conference_with_two_participants()
    shuffled = story[:]
    random.Random(7).shuffle(shuffled)

    assert [post(live, payload, str(uuid.uuid4())) for payload in shuffled] == [200] * len(story)

    wait_for(lambda: len(recorder.calls) == len(story), "every conference callback")
    assert sorted(event.sequence_number or 0 for _, event in recorder.calls) == list(range(1, 9))


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_a_recorded_call_and_a_conference_reach_every_channel_in_order(
    start: Callable[..., LiveServer], delivery: str
) -> None:
    recorder = Recorder()

    def build(recorder: Recorder, **config: Any) -> TwilioEvents:
        app = every_decorator_app(recorder, ordering="monotonic", **config)
        app.call.on_any(recorder.handler("call"))
        return app

    live = start(delivery, build, recorder)
    call = recorded_call(text="Call me at five.")
    conference = conference_with_two_participants()

    for payload in [*call, *conference]:
        post_and_wait(live, recorder, payload)

    assert recorder.names() == [
        "call",
        "call",
        "call",
        "recording:in-progress",
        "call",
        "recording:completed",
        "transcription:completed",
        "conference:participant-join",
        "conference:participant-join",
        "conference:conference-start",
        "conference:participant-mute",
        "conference:participant-unmute",
        "conference:participant-leave",
        "conference:participant-leave",
        "conference:conference-end",
    ]
    transcription = recorder.calls[6][1]
    assert isinstance(transcription, TranscriptionEvent)
    assert transcription.transcription_text == "Call me at five."
    assert transcription.call_sid == call[0]["CallSid"] == recorder.calls[0][1].sid
    assert transcription.recording_sid == call[3]["RecordingSid"]
    completed = recorder.calls[5][1]
    assert isinstance(completed, RecordingEvent) and completed.previous_status == "in-progress"


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_whatsapp_replies_locations_referrals_and_read_receipts_reach_the_message_channel(
    start: Callable[..., LiveServer], delivery: str
) -> None:
    recorder = Recorder()

    def build(recorder: Recorder, **config: Any) -> TwilioEvents:
        app = TwilioEvents(auth_token=TOKEN, **config)
        app.sms.on_received(recorder.handler("received"))
        app.sms.on_read(recorder.handler("read"))
        return app

    live = start(delivery, build, recorder)
    button = whatsapp_payload("Yes", MessageType="button", ButtonText="Yes", ButtonPayload="confirm-42")
    location = whatsapp_payload(
        "",
        MessageType="location",
        Latitude="52.52",
        Longitude="13.405",
        Address="Unter den Linden",
        Label="Office",
    )
    referral = whatsapp_payload(
        "Is this still on?",
        ReferralBody="Spring sale",
        ReferralHeadline="10% off",
        ReferralSourceId="120210000000",
        ReferralSourceType="ad",
        ReferralSourceUrl="https://fb.me/abc",
        ReferralCtwaClid="ARAkLkA8rmlFeiCktEJQ",
    )
    read = sms_payload("read", ChannelPrefix="whatsapp", ChannelInstallSid="XE" + "1" * 32, EventType="READ")

    for payload in (button, location, referral):
        answer = live.callback(payload)
        assert answer.status_code == 200 and "<Response" in answer.text
    post_and_wait(live, recorder, read)

    wait_for(lambda: len(recorder.calls) == 4, "every message")
    events = dict(
        zip(["button", "location", "referral", "read"], (event for _, event in recorder.calls), strict=True)
    )
    assert all(isinstance(event, SmsEvent) for event in events.values())
    assert (events["button"].button_payload, events["button"].message_type) == ("confirm-42", "button")
    assert (events["button"].profile_name, events["button"].wa_id) == ("Ada", "14155550100")
    assert (events["location"].latitude, events["location"].label) == (52.52, "Office")
    assert (events["referral"].referral_source_type, events["referral"].referral_ctwa_clid) == (
        "ad",
        "ARAkLkA8rmlFeiCktEJQ",
    )
    assert events["referral"].referral_num_media == 0 and events["referral"].is_inbound
    assert events["read"].status is SmsStatus.READ and events["read"].event_type == "READ"
    assert events["read"].channel_prefix == "whatsapp" and not events["read"].is_inbound

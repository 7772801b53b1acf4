"""Every kind of request Twilio sends about one call, over a real uvicorn server: each reaches its own
handler (and channel) exactly once, none is taken for another, and Twilio's retries are recognised as
retries.

Payloads follow the fields Twilio documents for each kind (`twilio_events.testing`'s factories), signed
with twilio's own RequestValidator, inline and durable (a real SQLite file).
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from twilio.twiml.voice_response import VoiceResponse

from twilio_events import CallEvent, Event, SmsEvent, TwilioEvents
from twilio_events.kinds import RequestKind
from twilio_events.testing import (
    TEST_ACCOUNT_SID,
    TwilioTestClient,
    amd_payload,
    call_payload,
    conference_payload,
    dial_action_payload,
    gather_payload,
    inbound_sms_payload,
    incoming_call_payload,
    pay_action_payload,
    record_action_payload,
    recording_status_payload,
    sms_payload,
    transcription_payload,
)

from .conftest import TOKEN, LiveServer, wait_for

TOKEN_HEADER = "I-Twilio-Idempotency-Token"


@dataclass
class Seen:
    """What the handlers were called with: (handler, kind, status, idempotency key, digits)."""

    calls: list[tuple[str, str, str, str | None, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, handler: str, event: Event) -> None:
        digits = event.digits if isinstance(event, CallEvent) else None
        with self.lock:
            self.calls.append((handler, str(event.kind), str(event.status), event.idempotency_key, digits))

    def handlers(self) -> Counter[str]:
        return Counter(call[0] for call in self.calls)


def ivr_app(seen: Seen, **config: Any) -> TwilioEvents:
    """An app with a handler for every call status and every voice webhook: webhooks answer TwiML that
    names what they received, so each answer can be told apart."""
    app = TwilioEvents(auth_token=TOKEN, **config)

    def status_handler(name: str) -> Callable[[CallEvent], None]:
        def handler(event: CallEvent) -> None:
            seen.record(name, event)

        return handler

    for status in (
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "no-answer",
        "canceled",
        "failed",
    ):
        app.call.on(status)(status_handler(f"status:{status}"))

    def webhook_handler(name: str) -> Callable[[CallEvent], VoiceResponse]:
        def handler(event: CallEvent) -> VoiceResponse:
            seen.record(name, event)
            reply = VoiceResponse()
            reply.say(f"{name} {event.digits or event.speech_result or event.dial_call_status or ''}".strip())
            return reply

        return handler

    app.call.on_incoming(webhook_handler("incoming"))
    app.call.on_gather(webhook_handler("gather"))
    app.call.on_dial_action(webhook_handler("dial"))
    app.call.on_record_action(webhook_handler("record"))
    app.call.on_pay_action(webhook_handler("pay"))

    @app.sms.on_any
    def any_message(event: SmsEvent) -> None:
        seen.record(f"sms:{event.status}", event)

    for channel in (app.recording, app.transcription, app.conference, app.amd):

        def any_status(event: Event, name: str = channel.name) -> None:
            seen.record(f"{name}:{event.status}", event)

        channel.on_any(any_status)

    return app


def call_corpus(sid: str) -> list[tuple[str, dict[str, str]]]:
    """One request of every kind Twilio sends about one call (plus a message), labelled by the handler
    that must receive it."""
    one = {"CallSid": sid}
    message_sid = "SM" + uuid.uuid4().hex
    message = {"MessageSid": message_sid, "SmsSid": message_sid}
    statuses = ["initiated", "ringing", "in-progress", "completed"]
    recording = "RE" + uuid.uuid4().hex
    return [
        ("incoming", incoming_call_payload(**one)),
        *(
            (f"status:{status}", call_payload(status, SequenceNumber=str(n), **one))
            for n, status in enumerate(statuses)
        ),
        ("gather", gather_payload("1", **one)),
        ("gather", gather_payload("2", **one)),
        ("gather", gather_payload("1", **one)),  # a later menu step pressing the same key
        ("gather", gather_payload(speech="billing", **one)),
        ("dial", dial_action_payload("completed", **one)),
        ("record", record_action_payload(**one)),
        ("pay", pay_action_payload(**one)),
        ("recording:in-progress", recording_status_payload("in-progress", RecordingSid=recording, **one)),
        ("recording:completed", recording_status_payload("completed", RecordingSid=recording, **one)),
        ("transcription:completed", transcription_payload(RecordingSid=recording, **one)),
        ("conference:participant-join", conference_payload("participant-join", **one)),
        ("amd:machine_end_beep", amd_payload("machine_end_beep", **one)),
        *((f"sms:{status}", sms_payload(status, **message)) for status in ("queued", "sent", "delivered")),
        ("sms:received", inbound_sms_payload("menu please")),
        ("refused", {"AccountSid": TEST_ACCOUNT_SID, "CallSid": sid}),  # no kind Twilio documents
    ]


CHANNEL_KINDS = {
    "status": RequestKind.CALL_STATUS,
    "recording": RequestKind.RECORDING_STATUS,
    "transcription": RequestKind.TRANSCRIPTION,
    "conference": RequestKind.CONFERENCE_STATUS,
    "amd": RequestKind.AMD,
}


@pytest.fixture
def app_for(serve: Callable[..., LiveServer], tmp_path: Path) -> Iterator[Callable[[str, Seen], LiveServer]]:
    def start(delivery: str, seen: Seen) -> LiveServer:
        config: dict[str, Any] = {"delivery": delivery}
        if delivery == "durable":
            config.update(store=f"sqlite:///{tmp_path / 'events.db'}", retry_delay=0.05)
        return serve(ivr_app(seen, **config))

    yield start


def post(live: LiveServer, payload: dict[str, str], token: str | None) -> httpx2.Response:
    return live.callback(payload, headers={TOKEN_HEADER: token} if token else None)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("with_tokens", [True, False], ids=["token", "no-token"])
@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_every_kind_of_request_reaches_its_own_handler_once_and_retries_are_recognised(
    app_for: Callable[[str, Seen], LiveServer],
    caplog: pytest.LogCaptureFixture,
    delivery: str,
    with_tokens: bool,
    seed: int,
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    seen = Seen()
    live = app_for(delivery, seen)
    corpus = call_corpus("CA" + uuid.uuid4().hex)
    random.Random(seed).shuffle(corpus)
    tokens = [str(uuid.uuid4()) if with_tokens else None for _ in corpus]
    expected = Counter(label for label, _ in corpus if label != "refused")

    answers = [post(live, payload, token) for (_, payload), token in zip(corpus, tokens, strict=True)]

    for (label, payload), answer in zip(corpus, answers, strict=True):
        if label == "refused":
            assert answer.status_code == 400, (label, answer.text)
            assert "RecordingStatus (recording status callbacks)" in answer.text
        else:
            assert answer.status_code == 200, (label, answer.text)
        if label in ("incoming", "gather", "dial", "record", "pay"):
            spoken = (
                payload.get("Digits") or payload.get("SpeechResult") or payload.get("DialCallStatus") or ""
            )
            assert f"<Say>{label} {spoken}".strip() in answer.text, (label, answer.text)
    wait_for(
        lambda: seen.handlers() == expected, f"every handler to run once: {seen.handlers()} != {expected}"
    )
    for handler, kind, status, _, _ in seen.calls:
        channel = handler.partition(":")[0]
        if channel in CHANNEL_KINDS:
            assert kind == CHANNEL_KINDS[channel] and handler == f"{channel}:{status}", (handler, kind)
    assert "duplicate" not in caplog.text

    # Twilio's retries: each request again, with its own token when it had one.
    retried = [post(live, payload, token) for (_, payload), token in zip(corpus, tokens, strict=True)]

    for (label, _), answer in zip(corpus, retried, strict=True):
        assert answer.status_code == (400 if label == "refused" else 200), (label, answer.text)
        if label in ("incoming", "gather", "dial", "record", "pay"):
            assert f"<Say>{label}" in answer.text, (
                "a retried webhook gets its TwiML again, never an empty answer"
            )
    answered = Counter(
        label for label, _ in corpus if label in ("incoming", "gather", "dial", "record", "pay")
    )
    asynchronous = expected - answered - Counter({"sms:received": 1})
    wait_for(
        lambda: seen.handlers() == expected + answered + Counter({"sms:received": 1}),
        "the answered webhooks to run again, and nothing else",
    )
    duplicates = [line for line in caplog.text.splitlines() if "duplicate" in line]
    assert len(duplicates) == sum(asynchronous.values()), duplicates
    if with_tokens:
        for token in tokens:
            if token is not None:
                assert sum(f"token:{token}" in line for line in duplicates) <= 1


def test_a_transcription_does_not_hide_the_calls_end(
    app_for: Callable[[str, Seen], LiveServer],
) -> None:
    for with_token in (False, True):
        seen = Seen()
        live = app_for("inline", seen)
        sid = "CA" + uuid.uuid4().hex
        token = str(uuid.uuid4()) if with_token else None

        transcription = post(live, transcription_payload(CallSid=sid), token)
        completed = post(
            live,
            call_payload("completed", CallSid=sid, SequenceNumber=None),
            str(uuid.uuid4()) if with_token else None,
        )

        assert transcription.status_code == 200
        assert completed.status_code == 200
        assert [(handler, kind) for handler, kind, *_ in seen.calls] == [
            ("transcription:completed", "transcription"),
            ("status:completed", "call-status"),
        ]


@pytest.mark.parametrize("delivery", ["inline", "durable"])
@pytest.mark.parametrize("with_tokens", [True, False], ids=["token", "no-token"])
def test_a_three_step_menu_gets_three_twiml_answers(
    app_for: Callable[[str, Seen], LiveServer], delivery: str, with_tokens: bool
) -> None:
    seen = Seen()
    live = app_for(delivery, seen)
    sid = "CA" + uuid.uuid4().hex

    answers = [
        post(live, payload, str(uuid.uuid4()) if with_tokens else None)
        for payload in (
            incoming_call_payload(CallSid=sid),
            gather_payload("1", CallSid=sid),
            gather_payload("2", CallSid=sid),
            gather_payload("2", CallSid=sid),
        )
    ]

    assert [answer.status_code for answer in answers] == [200] * 4
    assert "<Say>incoming</Say>" in answers[0].text
    assert "<Say>gather 1</Say>" in answers[1].text
    assert "<Say>gather 2</Say>" in answers[2].text
    assert "<Say>gather 2</Say>" in answers[3].text
    assert [call[0] for call in seen.calls] == ["incoming", "gather", "gather", "gather"]


def test_the_test_client_sends_a_token_per_callback_and_the_same_on_a_redelivery() -> None:
    seen = Seen()
    app = ivr_app(seen)
    sid = "CA" + uuid.uuid4().hex

    with TwilioTestClient(app) as client:
        first = client.callback(gather_payload("1", CallSid=sid))
        second = client.callback(gather_payload("2", CallSid=sid))
        status = client.callback(call_payload("completed", CallSid=sid))
        again = client.redeliver(status)
        menu_again = client.redeliver(first)

    assert "<Say>gather 1</Say>" in first.text and "<Say>gather 2</Say>" in second.text
    assert "<Say>gather 1</Say>" in menu_again.text
    assert again.status_code == 200
    keys = {call[0]: call[3] for call in seen.calls}
    assert keys["status:completed"] == f"token:{status.request.headers[TOKEN_HEADER]}"
    assert first.request.headers[TOKEN_HEADER] != second.request.headers[TOKEN_HEADER]
    assert menu_again.request.headers[TOKEN_HEADER] == first.request.headers[TOKEN_HEADER]
    assert [call[0] for call in seen.calls].count("status:completed") == 1
    assert [call[3] for call in seen.calls if call[0] == "gather"] == [
        f"token:{first.request.headers[TOKEN_HEADER]}",
        f"token:{second.request.headers[TOKEN_HEADER]}",
        f"token:{first.request.headers[TOKEN_HEADER]}",
    ]


def test_the_test_client_can_leave_the_token_out() -> None:
    seen = Seen()
    app = ivr_app(seen)

    with TwilioTestClient(app, idempotency_tokens=False) as client:
        response = client.callback(call_payload("ringing"))

    assert TOKEN_HEADER.lower() not in {name.lower() for name in response.request.headers}
    assert seen.calls[0][3] is not None and seen.calls[0][3].startswith("call:")


def test_a_voice_webhook_without_its_handler_warns_that_twilio_ends_the_call(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    rang: list[CallEvent] = []
    app.call.on_ringing(rang.append)
    app.call.on_any(rang.append)
    live = serve(app)

    answer = live.callback(incoming_call_payload())

    assert answer.status_code == 200
    assert "<Response/>" in answer.text
    assert rang == [], "on_ringing and on_any are for the ringing status, not the incoming-call webhook"
    assert "has no handler (@app.call.on_incoming)" in caplog.text
    assert "Twilio ends the call" in caplog.text

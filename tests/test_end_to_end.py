"""End to end: a real uvicorn server on 127.0.0.1, requests signed with twilio's own RequestValidator."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from twilio_events import CallEvent, CallStatus, Media, SmsEvent, SmsStatus, TwilioEvents, UnknownStatus
from twilio_events.testing import (
    TEST_ACCOUNT_SID,
    call_payload,
    inbound_sms_payload,
    sign,
    sms_payload,
)

from .conftest import DEADLINE, FORM, TOKEN, LiveServer, Process, encode_form, free_port, running

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'

CALL_DECORATORS = [
    ("on_queued", CallStatus.QUEUED),
    ("on_initiated", CallStatus.INITIATED),
    ("on_ringing", CallStatus.RINGING),
    ("on_in_progress", CallStatus.IN_PROGRESS),
    ("on_completed", CallStatus.COMPLETED),
    ("on_busy", CallStatus.BUSY),
    ("on_failed", CallStatus.FAILED),
    ("on_no_answer", CallStatus.NO_ANSWER),
    ("on_canceled", CallStatus.CANCELED),
]
SMS_DECORATORS = [
    ("on_accepted", SmsStatus.ACCEPTED),
    ("on_scheduled", SmsStatus.SCHEDULED),
    ("on_queued", SmsStatus.QUEUED),
    ("on_sending", SmsStatus.SENDING),
    ("on_sent", SmsStatus.SENT),
    ("on_failed", SmsStatus.FAILED),
    ("on_delivered", SmsStatus.DELIVERED),
    ("on_undelivered", SmsStatus.UNDELIVERED),
    ("on_receiving", SmsStatus.RECEIVING),
    ("on_received", SmsStatus.RECEIVED),
    ("on_read", SmsStatus.READ),
    ("on_partially_delivered", SmsStatus.PARTIALLY_DELIVERED),
    ("on_canceled", SmsStatus.CANCELED),
]

# Twilio's published test vector (twilio-python tests/unit/test_request_validator.py).
VECTOR_TOKEN = "12345"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
VECTOR_TARGET = "/myapp.php?foo=1&bar=2"
VECTOR_HTTPS = "RSOYDt4T1cUTdK1PDd93/VVr8B8="  # https://mycompany.com/myapp.php?foo=1&bar=2
VECTOR_HTTP_1234 = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="  # http://mycompany.com:1234/myapp.php?foo=1&bar=2


class Fired:
    """Records which handler ran, with what, and whether it ran on the event loop."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, bool]] = []

    def handler(self, label: str, kind: str) -> Callable[..., Any]:
        if kind == "async":

            async def async_handler(event: Any) -> None:
                self.calls.append((label, event, _on_event_loop()))

            return async_handler

        def sync_handler(event: Any) -> None:
            self.calls.append((label, event, _on_event_loop()))

        return sync_handler

    @property
    def labels(self) -> list[str]:
        return [label for label, _, _ in self.calls]

    @property
    def events(self) -> list[Any]:
        return [event for _, event, _ in self.calls]


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def recording_app(**config: Any) -> tuple[TwilioEvents, Fired]:
    """An app whose on_any of both channels records, to prove a refused request ran nothing."""
    app = TwilioEvents(auth_token=TOKEN, **config)
    fired = Fired()
    app.call.on_any(fired.handler("call.on_any", "sync"))
    app.sms.on_any(fired.handler("sms.on_any", "async"))
    return app, fired


@pytest.fixture(scope="module")
def _recording_server() -> Iterator[tuple[LiveServer, Fired]]:
    app, fired = recording_app()
    with running(app) as live:
        yield live, fired


@pytest.fixture
def recorded(_recording_server: tuple[LiveServer, Fired]) -> tuple[LiveServer, Fired]:
    """A server shared by this module's tests, whose app records what its on_any handlers saw."""
    live, fired = _recording_server
    fired.calls.clear()
    return live, fired


# --- every decorator of both channels, sync and async ---------------------------------------------


@pytest.fixture(scope="module", params=["sync", "async"])
def every_handler(request: pytest.FixtureRequest) -> Iterator[tuple[LiveServer, Fired, str]]:
    """One server whose app has every call and sms decorator registered, all sync or all async."""
    kind: str = request.param
    app = TwilioEvents(auth_token=TOKEN)
    fired = Fired()
    for name, _ in CALL_DECORATORS:
        getattr(app.call, name)(fired.handler(f"call.{name}", kind))
    for name, _ in SMS_DECORATORS:
        getattr(app.sms, name)(fired.handler(f"sms.{name}", kind))
    with running(app) as live:
        yield live, fired, kind


@pytest.mark.parametrize(("decorator", "status"), CALL_DECORATORS)
def test_each_call_decorator_fires_for_its_status(
    every_handler: tuple[LiveServer, Fired, str], decorator: str, status: CallStatus
) -> None:
    live, fired, kind = every_handler
    fired.calls.clear()
    payload = call_payload(status)

    response = live.callback(payload)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == EMPTY_TWIML
    assert fired.labels == [f"call.{decorator}"]
    [(_, event, on_loop)] = fired.calls
    assert type(event) is CallEvent
    assert event.status is status
    assert event.call_sid == event.sid == payload["CallSid"]
    assert event.account_sid == TEST_ACCOUNT_SID
    assert event.from_ == payload["From"]
    assert event.to == payload["To"]
    assert event.direction == "outbound-api"
    assert event.sequence_number == 0
    assert isinstance(event.timestamp, datetime)
    if status.is_terminal:
        assert event.call_duration == (42 if status is CallStatus.COMPLETED else 0)
    else:
        assert event.call_duration is None
    # sync handlers run in the thread pool, async ones on the event loop
    assert on_loop is (kind == "async")


@pytest.mark.parametrize(("decorator", "status"), SMS_DECORATORS)
def test_each_sms_decorator_fires_for_its_status(
    every_handler: tuple[LiveServer, Fired, str], decorator: str, status: SmsStatus
) -> None:
    live, fired, kind = every_handler
    fired.calls.clear()
    payload = sms_payload(status)

    response = live.callback(payload)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == EMPTY_TWIML
    assert fired.labels == [f"sms.{decorator}"]
    [(_, event, on_loop)] = fired.calls
    assert type(event) is SmsEvent
    assert event.status is status
    assert event.message_sid == event.sid == payload["MessageSid"]
    assert event.messaging_service_sid == payload["MessagingServiceSid"]
    assert event.is_inbound is False
    expected_error = {SmsStatus.FAILED: 30008, SmsStatus.UNDELIVERED: 30003}.get(status)
    assert event.error_code == expected_error
    assert on_loop is (kind == "async")


def test_incoming_message_fires_on_received(every_handler: tuple[LiveServer, Fired, str]) -> None:
    live, fired, _ = every_handler
    fired.calls.clear()
    payload = inbound_sms_payload(body="Hi there")

    response = live.callback(payload)

    assert response.status_code == 200
    assert fired.labels == ["sms.on_received"]
    [event] = fired.events
    assert event.is_inbound is True
    assert event.body == "Hi there"
    assert event.media == ()


# --- typed events over the wire -----------------------------------------------------------------------


def test_call_event_fields_are_typed(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    fired = Fired()
    app.call.on_completed(fired.handler("completed", "async"))
    live = serve(app)
    payload = call_payload(
        CallStatus.COMPLETED,
        Timestamp="Fri, 08 Jan 2016 17:18:38 +0000",
        SequenceNumber="3",
        CallDuration="57",
        Duration="1",
        SipResponseCode="200",
        ErrorCode="31005",
        ParentCallSid="CA" + "1" * 32,
        CallerName="Ada Lovelace",
    )

    assert live.callback(payload).status_code == 200

    [event] = fired.events
    assert event.timestamp == datetime(2016, 1, 8, 17, 18, 38, tzinfo=UTC)
    assert event.sequence_number == 3
    assert event.call_duration == 57
    assert event.duration == 1
    assert event.sip_response_code == 200
    assert event.error_code == 31005
    assert event.parent_call_sid == "CA" + "1" * 32
    assert event.caller_name == "Ada Lovelace"
    assert event.callback_source == "call-progress-events"


def test_raw_keeps_every_parameter_as_received(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    fired = Fired()
    app.sms.on_delivered(fired.handler("delivered", "sync"))
    live = serve(app)
    payload = sms_payload(SmsStatus.DELIVERED, RawDlrDoneDate="2601081718")
    pairs = [
        *payload.items(),
        ("AddOns", "first"),
        ("AddOns", "second"),
        ("NotYetInventedByTwilio", "x = y & z"),
        ("Empty", ""),
    ]

    assert live.callback(pairs).status_code == 200

    [event] = fired.events
    assert event.raw.getlist("AddOns") == ["first", "second"]
    assert event.raw.get("AddOns") == "first"
    assert event.raw["AddOns"] == "first"
    assert event.raw["NotYetInventedByTwilio"] == "x = y & z"
    assert event.raw["Empty"] == ""
    assert event.raw.get("Missing") is None
    assert event.raw.multi_items() == pairs
    assert event.raw_dlr_done_date == datetime(2026, 1, 8, 17, 18)


def test_inbound_mms_has_its_media_and_body(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    fired = Fired()
    app.sms.on_received(fired.handler("received", "async"))
    live = serve(app)
    body = "Héllo 👋 & = + %20 <xml/>"
    payload = inbound_sms_payload(
        body=body,
        media=["https://api.twilio.com/media/ME1", ("https://api.twilio.com/media/ME2", "image/png")],
    )

    assert live.callback(payload).status_code == 200

    [event] = fired.events
    assert event.body == body
    assert event.num_media == 2
    assert event.num_segments == 1
    assert event.media == (
        Media("https://api.twilio.com/media/ME1", "image/jpeg"),
        Media("https://api.twilio.com/media/ME2", "image/png"),
    )
    assert event.message_sid.startswith("MM")
    assert event.is_inbound is True


# --- what handlers return -----------------------------------------------------------------------------


def _reply_messaging(event: SmsEvent) -> MessagingResponse:
    reply = MessagingResponse()
    reply.message(f"Thanks for: {event.body}")
    return reply


def _reply_voice(event: CallEvent) -> VoiceResponse:
    reply = VoiceResponse()
    reply.say("Hello & goodbye")
    reply.hangup()
    return reply


async def _reply_string(event: SmsEvent) -> str:
    return "<Response><Message>plain string</Message></Response>"


@pytest.mark.parametrize(
    ("register", "payload", "expected"),
    [
        (
            lambda app: app.sms.on_received(_reply_messaging),
            inbound_sms_payload(body="pizza"),
            '<?xml version="1.0" encoding="UTF-8"?><Response><Message>Thanks for: pizza</Message></Response>',
        ),
        (
            lambda app: app.call.on_in_progress(_reply_voice),
            call_payload(CallStatus.IN_PROGRESS),
            '<?xml version="1.0" encoding="UTF-8"?>'
            "<Response><Say>Hello &amp; goodbye</Say><Hangup /></Response>",
        ),
        (
            lambda app: app.sms.on_received(_reply_string),
            inbound_sms_payload(),
            "<Response><Message>plain string</Message></Response>",
        ),
    ],
    ids=["MessagingResponse", "VoiceResponse", "string"],
)
def test_twiml_replies_are_sent_as_text_xml(
    serve: Callable[..., LiveServer], register: Callable[[TwilioEvents], Any], payload: Any, expected: str
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    register(app)
    live = serve(app)

    response = live.callback(payload)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.text == expected


def test_a_starlette_response_is_sent_as_is(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN)

    @app.sms.on_sent
    def no_content(event: SmsEvent) -> Response:
        return Response(status_code=204, headers={"X-Handled-By": "no_content"})

    live = serve(app)

    response = live.callback(sms_payload(SmsStatus.SENT))

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-handled-by"] == "no_content"


# --- handler errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_failing_handler_gives_500_without_traceback_and_logs_it(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture, kind: str
) -> None:
    app = TwilioEvents(auth_token=TOKEN)

    def explode(event: CallEvent) -> None:
        raise RuntimeError("secret database password in this message")

    async def explode_async(event: CallEvent) -> None:
        explode(event)

    app.call.on_failed(explode if kind == "sync" else explode_async)
    live = serve(app)
    payload = call_payload(CallStatus.FAILED)
    caplog.set_level(logging.INFO, logger="twilio_events")

    response = live.callback(payload)

    assert response.status_code == 500
    assert "Traceback" not in response.text
    assert "secret" not in response.text
    assert "RuntimeError" not in response.text
    assert payload["CallSid"] in response.text
    assert "handler failed" in response.text
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.name == "twilio_events"
    assert payload["CallSid"] in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "Traceback (most recent call last)" in caplog.text
    assert 'raise RuntimeError("secret database password in this message")' in caplog.text


def test_a_handler_returning_something_unusable_is_a_logged_500(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    app.sms.on_delivered(lambda event: {"not": "twiml"})
    live = serve(app)
    payload = sms_payload(SmsStatus.DELIVERED)

    response = live.callback(payload)

    assert response.status_code == 500
    assert "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert payload["MessageSid"] in record.getMessage()
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], TypeError)


def test_on_error_hook_replaces_the_500(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    seen: list[tuple[Any, BaseException]] = []
    boom = ValueError("no such customer")

    @app.sms.on_received
    async def answer(event: SmsEvent) -> None:
        raise boom

    @app.on_error
    def apologise(event: SmsEvent, exc: Exception) -> MessagingResponse:
        seen.append((event, exc))
        reply = MessagingResponse()
        reply.message("Sorry, try again later")
        return reply

    live = serve(app)
    payload = inbound_sms_payload(body="balance?")

    response = live.callback(payload)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert "<Message>Sorry, try again later</Message>" in response.text
    [(event, exc)] = seen
    assert exc is boom
    assert isinstance(event, SmsEvent)
    assert event.body == "balance?"


def test_on_error_hook_returning_none_keeps_the_500(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    seen: list[Exception] = []
    app.call.on_busy(lambda event: 1 / 0)

    @app.on_error
    async def note(event: CallEvent, exc: Exception) -> None:
        seen.append(exc)

    live = serve(app)

    response = live.callback(call_payload(CallStatus.BUSY))

    assert response.status_code == 500
    assert [type(exc) for exc in seen] == [ZeroDivisionError]


def test_a_failing_on_error_hook_is_logged_and_the_500_stands(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    app.call.on_busy(lambda event: 1 / 0)

    @app.on_error
    def broken_hook(event: CallEvent, exc: Exception) -> None:
        raise KeyError("hook bug")

    live = serve(app)

    response = live.callback(call_payload(CallStatus.BUSY))

    assert response.status_code == 500
    assert "hook bug" not in response.text
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [type(r.exc_info[1]) for r in errors if r.exc_info] == [ZeroDivisionError, KeyError]
    assert "broken_hook" in errors[1].getMessage()


# --- refused requests: status, message, and no handler ran --------------------------------------------


def _signed_headers(live: LiveServer, params: Any, target: str = "/") -> dict[str, str]:
    return {"X-Twilio-Signature": sign(live.url(target), params, TOKEN)}


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_with_allow_post(recorded: tuple[LiveServer, Fired], method: str) -> None:
    live, fired = recorded
    payload = call_payload()

    response = live.request(
        method,
        content=encode_form(payload),
        headers={"Content-Type": FORM, **_signed_headers(live, payload)},
    )

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "Method Not Allowed" in response.text
    assert "POST" in response.text
    assert fired.calls == []


def test_head_gets_405_with_no_body(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded

    response = live.request("HEAD")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert response.content == b""
    assert fired.calls == []


def test_missing_signature_is_403(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded

    response = live.request("POST", content=encode_form(call_payload()), headers={"Content-Type": FORM})

    assert response.status_code == 403
    assert "X-Twilio-Signature header is missing" in response.text
    assert fired.calls == []


@pytest.mark.parametrize(
    "how",
    ["garbage", "other token", "other url", "empty"],
)
def test_wrong_signature_is_403(recorded: tuple[LiveServer, Fired], how: str) -> None:
    live, fired = recorded
    payload = sms_payload(SmsStatus.DELIVERED)
    signature = {
        "garbage": "bm90IGEgc2lnbmF0dXJl",
        "other token": sign(live.url(), payload, "some-other-token"),
        "other url": sign("https://example.com/", payload, TOKEN),
        "empty": "",
    }[how]

    response = live.callback(payload, signature=signature)

    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.text
    assert fired.calls == []


def test_a_signature_for_other_parameters_is_403(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded
    payload = call_payload(CallStatus.RINGING)
    signature = sign(live.url(), payload, TOKEN)

    response = live.callback({**payload, "CallStatus": "completed"}, signature=signature)

    assert response.status_code == 403
    assert "does not match" in response.text
    assert fired.calls == []


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [
        ("application/json", "got application/json"),
        ("multipart/form-data; boundary=xyz", "got multipart/form-data"),
        ("text/plain", "got text/plain"),
        (None, "got no Content-Type"),
    ],
)
def test_a_body_that_is_not_a_form_is_415(
    recorded: tuple[LiveServer, Fired], content_type: str | None, shown: str
) -> None:
    live, fired = recorded
    payload = call_payload()
    headers = _signed_headers(live, payload)
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = live.request("POST", content=encode_form(payload), headers=headers)

    assert response.status_code == 415
    assert "expected application/x-www-form-urlencoded" in response.text
    assert shown in response.text
    assert fired.calls == []


def test_form_content_type_with_charset_is_accepted(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded
    payload = call_payload()

    response = live.callback(
        payload, headers={"Content-Type": "Application/X-WWW-Form-Urlencoded; charset=utf-8"}
    )

    assert response.status_code == 200
    assert fired.labels == ["call.on_any"]


def _padded(size: int) -> list[tuple[str, str]]:
    """A status callback whose encoded body is exactly `size` bytes."""
    pairs = [*call_payload().items(), ("Pad", "")]
    missing = size - len(encode_form(pairs))
    assert missing >= 0
    pairs[-1] = ("Pad", "x" * missing)
    assert len(encode_form(pairs)) == size
    return pairs


def test_a_body_at_max_body_size_is_accepted(serve: Callable[..., LiveServer]) -> None:
    app, fired = recording_app(max_body_size=2048)
    live = serve(app)

    assert live.callback(_padded(2048)).status_code == 200
    assert fired.labels == ["call.on_any"]


def test_a_body_over_max_body_size_is_413(serve: Callable[..., LiveServer]) -> None:
    app, fired = recording_app(max_body_size=2048)
    live = serve(app)

    response = live.callback(_padded(2049))

    assert response.status_code == 413
    assert "exceeds the 2048-byte limit (max_body_size)" in response.text
    assert fired.calls == []


def test_the_default_limit_is_64_kib(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded

    assert live.callback(_padded(64 * 1024)).status_code == 200
    response = live.callback(_padded(64 * 1024 + 1))

    assert response.status_code == 413
    assert "65536-byte limit" in response.text
    assert fired.labels == ["call.on_any"]


def test_a_chunked_body_over_the_limit_is_413(serve: Callable[..., LiveServer]) -> None:
    app, fired = recording_app(max_body_size=2048)
    live = serve(app)
    body = encode_form(_padded(4096))

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 500):
            yield body[start : start + 500]

    response = live.request(
        "POST",
        content=chunks(),
        headers={"Content-Type": FORM, **_signed_headers(live, _padded(4096))},
    )

    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert fired.calls == []


def _raw_exchange(port: int, request: bytes) -> bytes:
    """Send `request` bytes and return what the server answers before closing or completing."""
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as conn:
        conn.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = conn.recv(65536)
            if not chunk:
                break
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        return head + b"\r\n\r\n" + body


def test_a_declared_content_length_over_the_limit_is_413_without_reading_the_body(
    recorded: tuple[LiveServer, Fired],
) -> None:
    live, fired = recorded
    # Only the head is sent: the app must answer from Content-Length alone, without waiting for the body.
    request = (
        b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"X-Twilio-Signature: anything\r\n"
        b"Content-Length: 10000000\r\n\r\n"
    )

    answer = _raw_exchange(live.port, request)

    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"max_body_size" in answer
    assert fired.calls == []


@pytest.mark.parametrize(
    "body",
    [
        b"CallStatus=ringing&CallSid=CA1&&",
        b"CallStatus=ringing&justaname",
        b"CallStatus=ringing&Body=\xff\xfe",
        b"CallStatus=ringing&Body=%FF%FE",
    ],
    ids=["empty-field", "no-equals", "invalid-utf8", "percent-encoded-invalid-utf8"],
)
def test_a_malformed_form_is_400(recorded: tuple[LiveServer, Fired], body: bytes) -> None:
    live, fired = recorded

    response = live.request(
        "POST", content=body, headers={"Content-Type": FORM, "X-Twilio-Signature": "anything"}
    )

    assert response.status_code == 400
    assert "malformed form body" in response.text
    assert "Traceback" not in response.text
    assert fired.calls == []


@pytest.mark.parametrize(
    "payload",
    [
        call_payload(CallStatus.RINGING, CallStatus=None),
        sms_payload(SmsStatus.SENT, MessageStatus=None, SmsStatus=None),
        call_payload(CallStatus.RINGING, CallStatus=""),
        {},
    ],
    ids=["call-without-status", "sms-without-status", "empty-status", "empty-body"],
)
def test_a_callback_without_a_status_is_400(
    recorded: tuple[LiveServer, Fired], payload: dict[str, str]
) -> None:
    live, fired = recorded

    response = live.callback(payload)

    assert response.status_code == 400
    assert "no status field" in response.text
    assert "CallStatus" in response.text
    assert "MessageStatus" in response.text
    assert fired.calls == []


@pytest.mark.parametrize("account_sid", ["AC" + "f" * 32, None], ids=["other-account", "no-account"])
def test_a_callback_for_another_account_is_403(
    serve: Callable[..., LiveServer], account_sid: str | None
) -> None:
    app, fired = recording_app(account_sid=TEST_ACCOUNT_SID)
    live = serve(app)

    response = live.callback(call_payload(AccountSid=account_sid))

    assert response.status_code == 403
    assert "another Twilio account (AccountSid)" in response.text
    assert fired.calls == []


def test_a_callback_for_the_configured_account_is_accepted(serve: Callable[..., LiveServer]) -> None:
    app, fired = recording_app(account_sid=TEST_ACCOUNT_SID)
    live = serve(app)

    assert live.callback(call_payload()).status_code == 200
    assert fired.labels == ["call.on_any"]


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_an_unknown_path_is_404(recorded: tuple[LiveServer, Fired], method: str) -> None:
    live, fired = recorded
    payload = call_payload()

    response = live.request(
        method,
        "/elsewhere",
        content=encode_form(payload),
        headers={"Content-Type": FORM, **_signed_headers(live, payload, "/elsewhere")},
    )

    assert response.status_code == 404
    assert "Twilio callbacks are received at /" in response.text
    assert fired.calls == []


def test_the_route_lives_at_the_configured_path(serve: Callable[..., LiveServer]) -> None:
    app, fired = recording_app(path="hooks/twilio/")
    live = serve(app)

    at_root = live.callback(call_payload(), "/")
    at_path = live.callback(call_payload(), "/hooks/twilio")

    assert at_root.status_code == 404
    assert "received at /hooks/twilio" in at_root.text
    assert at_path.status_code == 200
    assert fired.labels == ["call.on_any"]


# --- unknown statuses -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "label"),
    [
        (call_payload("answered-by-robot"), "call.on_any"),
        (sms_payload("teleported"), "sms.on_any"),
        (call_payload(CallStatus.RINGING), "call.on_any"),
    ],
    ids=["unknown-call-status", "unknown-sms-status", "known-status-without-handler"],
)
def test_a_status_without_its_own_handler_goes_to_on_any(
    recorded: tuple[LiveServer, Fired], payload: dict[str, str], label: str
) -> None:
    live, fired = recorded

    response = live.callback(payload)

    assert response.status_code == 200
    assert response.text == EMPTY_TWIML
    assert fired.labels == [label]
    [event] = fired.events
    status = payload.get("CallStatus") or payload["MessageStatus"]
    assert event.status == status


def test_an_unknown_status_keeps_its_string(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded

    live.callback(call_payload("answered-by-robot"))

    [event] = fired.events
    assert type(event.status) is UnknownStatus
    assert event.status == "answered-by-robot" and not event.status.is_terminal


def test_a_specific_handler_wins_over_on_any(serve: Callable[..., LiveServer]) -> None:
    app, fired = recording_app()
    app.call.on_ringing(fired.handler("call.on_ringing", "sync"))
    live = serve(app)

    live.callback(call_payload(CallStatus.RINGING))
    live.callback(call_payload(CallStatus.BUSY))

    assert fired.labels == ["call.on_ringing", "call.on_any"]


@pytest.mark.parametrize(
    "payload",
    [call_payload("answered-by-robot"), sms_payload("teleported"), call_payload(CallStatus.BUSY)],
    ids=["unknown-call-status", "unknown-sms-status", "known-status-without-handler"],
)
def test_without_a_handler_or_on_any_the_callback_is_acknowledged(
    serve: Callable[..., LiveServer], payload: dict[str, str]
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    fired = Fired()
    app.call.on_ringing(fired.handler("call.on_ringing", "sync"))
    app.sms.on_delivered(fired.handler("sms.on_delivered", "sync"))
    live = serve(app)

    response = live.callback(payload)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == EMPTY_TWIML
    assert fired.calls == []


def test_call_status_decides_the_channel(recorded: tuple[LiveServer, Fired]) -> None:
    live, fired = recorded

    live.callback(call_payload(CallStatus.COMPLETED, SmsStatus="delivered"))
    live.callback(sms_payload(SmsStatus.DELIVERED, MessageStatus=None))

    assert fired.labels == ["call.on_any", "sms.on_any"]
    assert fired.events[1].status is SmsStatus.DELIVERED


# --- registration styles over HTTP ------------------------------------------------------------------


def test_plain_call_registration_and_decorated_functions_stay_callable(
    serve: Callable[..., LiveServer],
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    seen: list[str] = []

    def on_busy(event: CallEvent) -> str:
        seen.append(f"busy {event.call_sid}")
        return "<Response/>"

    registered = app.call.on("busy")(on_busy)

    @app.sms.on("undelivered")
    async def undelivered(event: SmsEvent) -> None:
        seen.append(f"undelivered {event.message_sid}")

    live = serve(app)
    busy = call_payload(CallStatus.BUSY)
    lost = sms_payload(SmsStatus.UNDELIVERED)

    assert live.callback(busy).text == "<Response/>"
    assert live.callback(lost).status_code == 200
    # the decorated names are still the plain functions, usable in a unit test
    assert registered is on_busy
    direct = CallEvent(call_sid="CAdirect", status=CallStatus.BUSY)
    assert on_busy(direct) == "<Response/>"
    assert asyncio.run(undelivered(SmsEvent(message_sid="SMdirect"))) is None
    assert seen == [
        f"busy {busy['CallSid']}",
        f"undelivered {lost['MessageSid']}",
        "busy CAdirect",
        "undelivered SMdirect",
    ]


# --- the URL that is signed --------------------------------------------------------------------------


def test_twilio_vector_signatures_come_out_of_sign() -> None:
    assert sign("https://mycompany.com" + VECTOR_TARGET, VECTOR_PARAMS, VECTOR_TOKEN) == VECTOR_HTTPS
    assert sign("http://mycompany.com:1234" + VECTOR_TARGET, VECTOR_PARAMS, VECTOR_TOKEN) == VECTOR_HTTP_1234


def _vector_app(**config: Any) -> tuple[TwilioEvents, Fired]:
    app = TwilioEvents(auth_token=VECTOR_TOKEN, path="/myapp.php", **config)
    fired = Fired()
    app.call.on_any(fired.handler("call.on_any", "sync"))
    return app, fired


def _assert_vector_accepted(live: LiveServer, signature: str, headers: dict[str, str] | None = None) -> None:
    """The vector's signature passes; the vector has no CallStatus, so what follows is the 400 for that."""
    response = live.callback(VECTOR_PARAMS, VECTOR_TARGET, signature=signature, headers=headers)
    assert response.status_code == 400, response.text
    assert "no status field" in response.text

    changed = {**VECTOR_PARAMS, "Digits": "1235"}
    refused = live.callback(changed, VECTOR_TARGET, signature=signature, headers=headers)
    assert refused.status_code == 403
    assert "X-Twilio-Signature does not match" in refused.text

    no_query = live.callback(VECTOR_PARAMS, "/myapp.php", signature=signature, headers=headers)
    assert no_query.status_code == 403


@pytest.mark.parametrize(
    ("config", "headers", "signature"),
    [
        ({"public_url": "https://mycompany.com"}, None, VECTOR_HTTPS),
        ({"public_url": "https://mycompany.com/"}, None, VECTOR_HTTPS),
        ({"public_url": "http://mycompany.com:1234"}, None, VECTOR_HTTP_1234),
        ({}, {"Host": "mycompany.com:1234"}, VECTOR_HTTP_1234),
        (
            {"trust_forwarded_headers": True},
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mycompany.com"},
            VECTOR_HTTPS,
        ),
        (
            {"trust_forwarded_headers": True},
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mycompany.com", "X-Forwarded-Port": "443"},
            VECTOR_HTTPS,
        ),
        (
            {"trust_forwarded_headers": True},
            {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "mycompany.com", "X-Forwarded-Port": "1234"},
            VECTOR_HTTP_1234,
        ),
        (
            {"trust_forwarded_headers": True},
            {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "mycompany.com, proxy.internal"},
            VECTOR_HTTPS,
        ),
        (
            {"trust_forwarded_headers": True},
            {"Forwarded": 'for=203.0.113.7;proto=https;host="mycompany.com", for=10.0.0.1;proto=http'},
            VECTOR_HTTPS,
        ),
        (
            {"trust_forwarded_headers": True},
            {"Forwarded": "proto=http;host=mycompany.com:1234"},
            VECTOR_HTTP_1234,
        ),
        ({"trust_forwarded_headers": True}, {"Host": "mycompany.com:1234"}, VECTOR_HTTP_1234),
    ],
    ids=[
        "public_url",
        "public_url-trailing-slash",
        "public_url-with-port",
        "host-header",
        "x-forwarded",
        "x-forwarded-default-port",
        "x-forwarded-port",
        "x-forwarded-lists",
        "forwarded",
        "forwarded-with-port",
        "trusted-but-no-forwarded-headers",
    ],
)
def test_the_app_accepts_twilios_published_vectors(
    serve: Callable[..., LiveServer],
    config: dict[str, Any],
    headers: dict[str, str] | None,
    signature: str,
) -> None:
    app, fired = _vector_app(**config)
    live = serve(app)

    _assert_vector_accepted(live, signature, headers)
    assert fired.calls == []


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "mycompany.com"},
        {"Forwarded": "proto=https;host=mycompany.com"},
    ],
    ids=["x-forwarded", "forwarded"],
)
def test_forwarded_headers_are_ignored_unless_trusted(
    serve: Callable[..., LiveServer], headers: dict[str, str]
) -> None:
    app, fired = _vector_app()
    # As app.run() serves it: uvicorn's own X-Forwarded-Proto handling follows trust_forwarded_headers.
    live = serve(app, proxy_headers=app.trust_forwarded_headers)

    forged = live.callback(VECTOR_PARAMS, VECTOR_TARGET, signature=VECTOR_HTTPS, headers=headers)
    assert forged.status_code == 403

    # A request signed for the URL actually requested still passes, forwarded headers or not.
    payload = call_payload()
    real = live.callback(payload, VECTOR_TARGET, token=VECTOR_TOKEN, headers=headers)
    assert real.status_code == 200
    assert [event.call_sid for event in fired.events] == [payload["CallSid"]]


def test_public_url_replaces_the_address_the_request_arrived_on(serve: Callable[..., LiveServer]) -> None:
    app = TwilioEvents(auth_token=TOKEN, public_url="https://abc.ngrok.app")
    fired = Fired()
    app.call.on_any(fired.handler("any", "sync"))
    live = serve(app)
    payload = call_payload()

    local = live.callback(payload, "/?x=1")
    public = live.callback(payload, "/?x=1", signed_url="https://abc.ngrok.app/?x=1")

    assert local.status_code == 403
    assert public.status_code == 200
    assert len(fired.calls) == 1


@pytest.mark.parametrize(
    ("target", "decoded"),
    [
        ("/hooks/caf%C3%A9%20status", "/hooks/café status"),
        ("/hooks/caf%c3%a9%20status", "/hooks/café status"),
        ("/hooks/caf%C3%A9%20status?next=%2Fhome&x=a%20b", "/hooks/café status?next=/home&x=a b"),
    ],
    ids=["upper-case-escapes", "lower-case-escapes", "with-query"],
)
def test_percent_encoded_paths_are_signed_as_sent(
    serve: Callable[..., LiveServer], target: str, decoded: str
) -> None:
    app = TwilioEvents(auth_token=TOKEN, path="/hooks/café status")
    fired = Fired()
    app.sms.on_any(fired.handler("any", "sync"))
    live = serve(app)
    payload = sms_payload()

    as_decoded = live.callback(payload, target, signed_url=live.url(decoded))
    other_case = re.sub(r"%[0-9A-Fa-f]{2}", lambda m: m.group().swapcase(), target)
    re_encoded = live.callback(payload, target, signed_url=live.url(other_case))
    as_sent = live.callback(payload, target)

    assert as_decoded.status_code == 403
    assert re_encoded.status_code == 403
    assert as_sent.status_code == 200
    assert len(fired.calls) == 1


# --- mounted under another app --------------------------------------------------------------------------


def _starlette_parent(app: TwilioEvents) -> Any:
    return Starlette(routes=[Mount("/twilio", app=app)], lifespan=app.lifespan)


def _fastapi_parent(app: TwilioEvents) -> Any:
    parent = FastAPI(lifespan=app.lifespan)

    @parent.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    parent.mount("/twilio", app)
    return parent


@pytest.mark.parametrize("make_parent", [_starlette_parent, _fastapi_parent], ids=["starlette", "fastapi"])
def test_mounted_app_signs_over_the_full_mounted_path(
    serve: Callable[..., LiveServer], make_parent: Callable[[TwilioEvents], Any]
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    fired = Fired()
    app.call.on_completed(fired.handler("completed", "async"))
    live = serve(make_parent(app))
    payload = call_payload(CallStatus.COMPLETED)

    below_mount = live.callback(payload, "/twilio/", signed_url=live.url("/"))
    full = live.callback(payload, "/twilio/?id=7")
    elsewhere = live.callback(payload, "/twilio/other")

    assert below_mount.status_code == 403
    assert full.status_code == 200
    assert full.text == EMPTY_TWIML
    assert elsewhere.status_code == 404
    assert "received at /" in elsewhere.text
    assert [event.call_sid for event in fired.events] == [payload["CallSid"]]


@pytest.mark.parametrize("make_parent", [_starlette_parent, _fastapi_parent], ids=["starlette", "fastapi"])
def test_mounted_app_with_its_own_path(
    serve: Callable[..., LiveServer], make_parent: Callable[[TwilioEvents], Any]
) -> None:
    app = TwilioEvents(auth_token=TOKEN, path="/status")
    fired = Fired()
    app.sms.on_delivered(fired.handler("delivered", "sync"))
    live = serve(make_parent(app))
    payload = sms_payload(SmsStatus.DELIVERED)

    assert live.callback(payload, "/twilio/status").status_code == 200
    assert live.callback(payload, "/status").status_code == 404
    assert len(fired.calls) == 1


@pytest.mark.parametrize("make_parent", [_starlette_parent, _fastapi_parent], ids=["starlette", "fastapi"])
def test_lifespan_runs_when_mounted(
    make_parent: Callable[[TwilioEvents], Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    app = TwilioEvents(auth_token=TOKEN)
    app.call.on_ringing(lambda event: None)

    with running(make_parent(app), lifespan="on") as live:
        started = [r.getMessage() for r in caplog.records if "ready" in r.getMessage()]
        assert started == [
            "twilio_events ready at /twilio/ with 1 call and 0 message handlers; signatures validated"
        ]
        assert live.callback(call_payload(), "/twilio/").status_code == 200

    lifespan = live.server.lifespan
    assert not lifespan.startup_failed
    assert not lifespan.shutdown_failed
    assert not lifespan.error_occurred


def test_lifespan_runs_when_served_directly_in_process(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    app = TwilioEvents(auth_token=TOKEN)
    app.sms.on_sent(lambda event: None)

    with running(app, lifespan="on") as live:
        started = [r.getMessage() for r in caplog.records if "ready" in r.getMessage()]
        assert started == [
            "twilio_events ready at / with 0 call and 1 message handlers; signatures validated"
        ]
        assert live.callback(sms_payload(SmsStatus.SENT)).status_code == 200

    lifespan = live.server.lifespan
    assert not lifespan.startup_failed
    assert not lifespan.shutdown_failed
    assert not lifespan.error_occurred


UVICORN_MODULE = """
import logging

from twilio_events import TwilioEvents

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

app = TwilioEvents()


@app.call.on_ringing
def ringing(event):
    logging.getLogger("callbacks").info("ringing %s", event.call_sid)
"""


def _uvicorn(
    spawn: Callable[..., Process], tmp_path: Path, env: dict[str, str], module: str = UVICORN_MODULE
) -> tuple[Process, int]:
    """`python -m uvicorn callbacks_app:app` on a free port, as a user would start it."""
    (tmp_path / "callbacks_app.py").write_text(module)
    port = free_port()
    args = [
        "-m",
        "uvicorn",
        "callbacks_app:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "on",
    ]
    return spawn(args, {"PYTHONPATH": str(tmp_path), **env}), port


def test_uvicorn_module_app_runs_lifespan_and_serves(spawn: Callable[..., Process], tmp_path: Path) -> None:
    process, port = _uvicorn(spawn, tmp_path, {"TWILIO_AUTH_TOKEN": TOKEN})
    process.wait_for_stderr("Application startup complete.")
    assert (
        "twilio_events ready at / with 1 call and 0 message handlers; signatures validated" in process.stderr
    )

    payload = call_payload(CallStatus.RINGING)
    url = f"http://127.0.0.1:{port}/"
    response = httpx2.post(
        url,
        content=encode_form(payload),
        headers={"Content-Type": FORM, "X-Twilio-Signature": sign(url, payload, TOKEN)},
        timeout=DEADLINE,
    )
    assert response.status_code == 200
    process.wait_for_stderr(f"ringing {payload['CallSid']}")

    process.terminate()
    # uvicorn shuts down gracefully, then re-raises the signal it caught, as a process killed by it would.
    assert process.wait() in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in process.stderr
    assert "Finished server process" in process.stderr
    assert "Traceback" not in process.stderr


def test_uvicorn_module_app_with_validation_off_warns_and_accepts_unsigned(
    spawn: Callable[..., Process], tmp_path: Path
) -> None:
    process, port = _uvicorn(spawn, tmp_path, {"TWILIO_EVENTS_VALIDATE_SIGNATURE": "false"})
    process.wait_for_stderr("Application startup complete.")
    assert "X-Twilio-Signature validation is OFF" in process.stderr
    assert "twilio_events ready at / with 1 call and 0 message handlers\n" in process.stderr

    payload = call_payload(CallStatus.RINGING)
    response = httpx2.post(
        f"http://127.0.0.1:{port}/",
        data=payload,
        headers={"X-Twilio-Signature": "anything"},
        timeout=DEADLINE,
    )

    assert response.status_code == 200
    process.wait_for_stderr(f"ringing {payload['CallSid']}")
    process.terminate()
    assert process.wait() in (0, -signal.SIGTERM)


DUPLICATE_MODULE = (
    UVICORN_MODULE
    + """

@app.call.on("ringing")
def ringing_again(event):
    pass
"""
)


@pytest.mark.parametrize(
    ("env", "module", "expected"),
    [
        ({}, UVICORN_MODULE, "cannot start: Signature validation is on but no Twilio auth token"),
        (
            {"TWILIO_AUTH_TOKEN": TOKEN},
            DUPLICATE_MODULE,
            "HandlerAlreadyRegistered: app.call already has a handler for status 'ringing': ringing; "
            "cannot also register ringing_again",
        ),
    ],
    ids=["no-token", "duplicate-handler"],
)
def test_uvicorn_refuses_to_start_a_misconfigured_app(
    spawn: Callable[..., Process], tmp_path: Path, env: dict[str, str], module: str, expected: str
) -> None:
    process, _ = _uvicorn(spawn, tmp_path, env, module)

    assert process.wait() != 0
    assert expected in process.stderr
    assert "Application startup complete." not in process.stderr


# --- validation off -------------------------------------------------------------------------------------


def test_validation_off_accepts_unsigned_callbacks_and_warns(
    serve: Callable[..., LiveServer], caplog: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(validate_signature=False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("validation is OFF" in r.getMessage() for r in warnings)
    fired = Fired()
    app.call.on_any(fired.handler("any", "sync"))
    live = serve(app)

    response = live.request("POST", content=encode_form(call_payload()), headers={"Content-Type": FORM})

    assert response.status_code == 200
    assert fired.labels == ["any"]

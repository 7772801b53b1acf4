"""`TwilioEvents`: configuration, the ASGI entry point and dispatch, in process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.testclient import WebSocketDenialResponse
from starlette.websockets import WebSocketDisconnect

import twilio_events
from twilio_events import CallEvent, ConfigurationError, SmsEvent, TwilioEvents
from twilio_events.testing import TEST_ACCOUNT_SID, TwilioTestClient, call_payload, sign, sms_payload

from .conftest import FORM, TOKEN, encode_form


def test_the_public_api() -> None:
    expected = {
        "AmdEvent",
        "AnsweredBy",
        "CallEvent",
        "CallStatus",
        "ConferenceEvent",
        "ConferenceEventType",
        "ConfigurationError",
        "Event",
        "HandlerAlreadyRegistered",
        "Listener",
        "Media",
        "RecordingEvent",
        "RecordingStatus",
        "RequestKind",
        "SmsEvent",
        "SmsStatus",
        "TranscriptionEvent",
        "TranscriptionStatus",
        "TwilioEvents",
        "__version__",
    }
    assert expected <= set(twilio_events.__all__)
    for name in twilio_events.__all__:
        assert hasattr(twilio_events, name)
    assert twilio_events.__version__ == "0.1.0"


# --- configuration ----------------------------------------------------------------------------------------


def test_the_token_and_account_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "env-token")
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TEST_ACCOUNT_SID)

    app = TwilioEvents()

    assert app.auth_token == "env-token"
    assert app.account_sid == TEST_ACCOUNT_SID
    assert app.validate_signature is True
    assert TwilioEvents(auth_token="explicit").auth_token == "explicit"


def test_the_account_from_the_environment_is_enforced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_ACCOUNT_SID", TEST_ACCOUNT_SID)
    app = TwilioEvents(auth_token=TOKEN)
    app.call.on_any(lambda event: None)
    client = TwilioTestClient(app)

    assert client.callback(call_payload()).status_code == 200
    assert client.callback(call_payload(AccountSid="AC" + "9" * 32)).status_code == 403


def test_validation_off_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    app = TwilioEvents(validate_signature=False)

    assert app.validate_signature is False
    [record] = caplog.records
    assert record.name == "twilio_events"
    assert record.levelno == logging.WARNING
    assert "X-Twilio-Signature validation is OFF" in record.getMessage()
    assert "local development" in record.getMessage()


def test_validation_on_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    TwilioEvents(auth_token=TOKEN)

    assert caplog.records == []


@pytest.mark.parametrize("value", ["false", "0", "no", "OFF", " False "])
def test_validation_can_be_turned_off_by_environment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_VALIDATE_SIGNATURE", value)

    app = TwilioEvents()

    assert app.validate_signature is False
    assert "validation is OFF" in caplog.text


@pytest.mark.parametrize("value", ["true", "1", "yes", "", "  "])
def test_other_environment_values_keep_validation_on(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_VALIDATE_SIGNATURE", value)

    with pytest.raises(ConfigurationError):
        TwilioEvents().check_configuration()


def test_an_explicit_flag_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_VALIDATE_SIGNATURE", "false")

    with pytest.raises(ConfigurationError):
        TwilioEvents(validate_signature=True).check_configuration()


@pytest.mark.parametrize(
    ("path", "expected"), [("/", "/"), ("", "/"), ("hooks", "/hooks"), ("/hooks/twilio/", "/hooks/twilio")]
)
def test_the_path_is_normalised(path: str, expected: str) -> None:
    app = TwilioEvents(auth_token=TOKEN, path=path)

    assert app.path == expected
    assert repr(app) == f"TwilioEvents(path={expected!r}, delivery='inline', validate_signature=True)"


def test_only_one_error_hook() -> None:
    app = TwilioEvents(auth_token=TOKEN)

    def hook(event: Any, exc: Exception) -> None:
        pass

    app.on_error(hook)

    with pytest.raises(ValueError, match="an error hook is already registered"):
        app.on_error(hook)


# --- the Twilio REST client -------------------------------------------------------------------------------


def test_client_is_built_once_from_the_credentials() -> None:
    from twilio.rest import Client

    app = TwilioEvents(auth_token=TOKEN, account_sid=TEST_ACCOUNT_SID)

    client = app.client

    assert isinstance(client, Client)
    assert client.username == TEST_ACCOUNT_SID
    assert client.password == TOKEN
    assert client.account_sid == TEST_ACCOUNT_SID
    assert app.client is client


@pytest.mark.parametrize(
    "config",
    [{"auth_token": TOKEN}, {"account_sid": TEST_ACCOUNT_SID, "validate_signature": False}],
    ids=["no-account-sid", "no-token"],
)
def test_client_needs_both_credentials(config: dict[str, Any]) -> None:
    app = TwilioEvents(**config)

    with pytest.raises(
        ConfigurationError, match=r"app\.client needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
    ):
        _ = app.client


# --- the ASGI edge in process ----------------------------------------------------------------------------


def test_lifespan_logs_readiness(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    app = TwilioEvents(auth_token=TOKEN, path="/hooks")
    app.call.on_ringing(lambda event: None)
    app.sms.on_sent(lambda event: None)
    app.sms.on_any(lambda event: None)

    with TwilioTestClient(app) as client:
        assert client.callback(call_payload(), "/hooks").status_code == 200

    assert (
        caplog.messages[0]
        == "twilio_events ready at /hooks with 1 call and 2 message handlers; signatures validated"
    )


def test_lifespan_repeats_the_warning_when_validation_is_off(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    app = TwilioEvents(validate_signature=False)
    caplog.clear()

    with TwilioTestClient(app):
        pass

    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]
    assert "validation is OFF" in caplog.messages[0]
    assert caplog.messages[1] == "twilio_events ready at / with 0 call and 0 message handlers"


def test_the_lifespan_context_manager_can_be_entered_directly(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    app = TwilioEvents(auth_token=TOKEN)

    async def enter() -> None:
        async with app.lifespan(object()):
            assert "twilio_events ready" in caplog.text

    asyncio.run(enter())


def test_a_websocket_handshake_gets_the_405_of_a_get() -> None:
    client = TwilioTestClient(TwilioEvents(auth_token=TOKEN))

    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/"):
        pass

    answer = refused.value
    assert isinstance(answer, WebSocketDenialResponse)
    assert answer.status_code == 405
    assert answer.headers["allow"] == "POST"
    assert answer.text == "Method Not Allowed: Twilio callbacks are POST requests\n"


def test_dispatch_is_logged_with_the_handler(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="twilio_events")
    app = TwilioEvents(auth_token=TOKEN)

    def on_ringing(event: CallEvent) -> None:
        pass

    app.call.on_ringing(on_ringing)
    client = TwilioTestClient(app)
    ringing = call_payload("ringing")
    busy = call_payload("busy")

    client.callback(ringing)
    client.callback(busy)

    assert f"[asgi] call ringing {ringing['CallSid']} -> " in caplog.text
    assert "on_ringing()" in caplog.text
    assert f"[asgi] no call handler for 'busy' ({busy['CallSid']}): acknowledged" in caplog.text


def test_refusals_are_logged_with_their_reason(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="twilio_events")
    client = TwilioTestClient(TwilioEvents(auth_token=TOKEN))

    client.callback(call_payload(), signature="wrong")

    assert "[asgi] refused 403: X-Twilio-Signature does not match http://testserver/" in caplog.text
    assert "No configured secret matches it" in caplog.text
    assert "Forbidden: X-Twilio-Signature does not match" not in caplog.text  # one line, the explained one


def test_checks_run_in_order_method_signature_type_size_form_signature_account() -> None:
    app = TwilioEvents(auth_token=TOKEN, account_sid=TEST_ACCOUNT_SID, max_body_size=1500)
    ran: list[Any] = []
    app.call.on_any(ran.append)
    client = TwilioTestClient(app)
    big = b"x" * 2000

    # The method is checked first, then a missing signature, before the body is even looked at.
    assert client.get("/", headers={"Content-Type": "text/plain"}).status_code == 405
    assert client.post("/", content=big, headers={"Content-Type": "text/plain"}).status_code == 403
    signed = {"X-Twilio-Signature": "x"}
    assert client.post("/", content=big, headers={**signed, "Content-Type": "text/plain"}).status_code == 415
    assert client.post("/", content=big, headers={**signed, "Content-Type": FORM}).status_code == 413
    assert client.post("/", content=b"a=1&&", headers={**signed, "Content-Type": FORM}).status_code == 400
    other_account = call_payload(AccountSid="AC" + "9" * 32)
    wrong_signature = client.callback(other_account, signature="x")
    assert wrong_signature.status_code == 403
    assert "X-Twilio-Signature does not match" in wrong_signature.text
    assert "another Twilio account" in client.callback(other_account).text
    assert ran == []


def test_validation_off_accepts_any_or_no_signature() -> None:
    app = TwilioEvents(auth_token=TOKEN, validate_signature=False)
    ran: list[SmsEvent] = []
    app.sms.on_any(ran.append)
    client = TwilioTestClient(app)

    assert client.callback(sms_payload(), signature="wrong").status_code == 200
    assert (
        client.post("/", content=encode_form(sms_payload()), headers={"Content-Type": FORM}).status_code
        == 200
    )
    assert len(ran) == 2


class Sent:
    """An ASGI `send` that keeps the messages."""

    def __init__(self) -> None:
        self.messages: list[MutableMapping[str, Any]] = []

    async def __call__(self, message: MutableMapping[str, Any]) -> None:
        self.messages.append(message)


def _http_scope(path: str, headers: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": path,
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "server": ("10.0.0.5", 443),
        **extra,
    }


def test_a_server_without_raw_path_signs_the_percent_encoded_path() -> None:
    app = TwilioEvents(auth_token=TOKEN, path="/hooks/café")
    ran: list[CallEvent] = []
    app.call.on_any(ran.append)
    payload = call_payload()
    body = encode_form(payload)
    headers = {
        "Host": "example.com",
        "Content-Type": FORM,
        "X-Twilio-Signature": sign("https://example.com/hooks/caf%C3%A9", payload, TOKEN),
    }
    messages: list[dict[str, Any]] = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    sent = Sent()
    asyncio.run(app(_http_scope("/hooks/café", headers), receive, sent))

    assert sent.messages[0]["status"] == 200
    assert [event.call_sid for event in ran] == [payload["CallSid"]]


def test_a_client_that_disconnects_gets_no_answer_and_runs_nothing() -> None:
    app = TwilioEvents(auth_token=TOKEN)
    ran: list[CallEvent] = []
    app.call.on_any(ran.append)
    headers = {"Host": "example.com", "Content-Type": FORM, "X-Twilio-Signature": "x"}
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": b"CallStatus=", "more_body": True},
        {"type": "http.disconnect"},
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    sent = Sent()
    asyncio.run(app(_http_scope("/", headers), receive, sent))

    assert sent.messages == []
    assert ran == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", [(8090, "twilioListener")]), ("9000", [(9000, "twilioListener")]),
     ("9000, 9001", [(9000, "twilioListener"), (9001, "twilioListener-9001")])],
)  # fmt: skip
def test_default_listeners_follow_twilio_events_port(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[tuple[int, str]]
) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_PORT", value)

    app = TwilioEvents(auth_token=TOKEN)

    assert [(listener.port, listener.name) for listener in app.listeners] == expected


def test_a_bad_twilio_events_port_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_PORT", "http")

    with pytest.raises(ConfigurationError, match="TWILIO_EVENTS_PORT"):
        TwilioEvents(auth_token=TOKEN)

"""The helpers users test their own handlers with: payload factories, `sign` and `TwilioTestClient`."""

from __future__ import annotations

import re
from datetime import timedelta
from email.utils import parsedate_to_datetime

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from twilio.request_validator import RequestValidator

from twilio_events import CallEvent, CallStatus, Media, SmsEvent, SmsStatus, TwilioEvents
from twilio_events.events import Params
from twilio_events.testing import (
    TEST_ACCOUNT_SID,
    TwilioTestClient,
    call_payload,
    conference_with_two_participants,
    inbound_sms_payload,
    new_sid,
    recorded_call,
    sign,
    sms_payload,
)

from .conftest import TOKEN

SID = re.compile(r"^[A-Z]{2}[0-9a-f]{32}$")


def test_new_sid_looks_like_twilios() -> None:
    sids = {new_sid("CA") for _ in range(20)}

    assert len(sids) == 20
    assert all(SID.match(sid) and sid.startswith("CA") for sid in sids)


# --- sign -------------------------------------------------------------------------------------------------


def test_sign_matches_twilios_vector_from_a_mapping_or_pairs() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
        "Caller": "+14158675309",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"

    assert sign(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign(url, list(reversed(params.items())), "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert sign(url, params, "12345") == RequestValidator("12345").compute_signature(url, params)


def test_sign_covers_every_value_of_a_repeated_parameter() -> None:
    url = "https://example.com/"
    both = [("Tag", "a"), ("Tag", "b")]

    signature = sign(url, both, TOKEN)

    assert signature != sign(url, both[:1], TOKEN)
    assert RequestValidator(TOKEN).validate(url, Params(both), signature)


# --- payload factories ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(CallStatus))
def test_call_payload_for_every_status(status: CallStatus) -> None:
    payload = call_payload(status)
    event = CallEvent.from_params(Params(payload))

    assert payload["CallStatus"] == status.value
    assert event.status is status
    assert SID.match(event.call_sid) and event.call_sid.startswith("CA")
    assert event.account_sid == TEST_ACCOUNT_SID
    assert event.api_version == "2010-04-01"
    assert event.callback_source == "call-progress-events"
    assert event.sequence_number == 0
    assert event.timestamp is not None
    assert event.timestamp.utcoffset() == timedelta(0)
    assert (event.caller, event.called) == (event.from_, event.to)
    if status is CallStatus.COMPLETED:
        assert (event.call_duration, event.duration, event.sip_response_code) == (42, 1, 200)
    elif status.is_terminal:
        assert (event.call_duration, event.duration, event.sip_response_code) == (0, None, 487)
    else:
        assert (event.call_duration, event.duration, event.sip_response_code) == (None, None, None)


def test_call_payload_defaults_to_ringing_with_a_fresh_sid() -> None:
    first, second = call_payload(), call_payload()

    assert first["CallStatus"] == "ringing"
    assert first["CallSid"] != second["CallSid"]


def test_timestamps_are_rfc_2822() -> None:
    stamp = call_payload()["Timestamp"]

    assert re.match(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} [+-]\d{4}$", stamp), stamp
    assert parsedate_to_datetime(stamp).utcoffset() == timedelta(0)


def test_overrides_replace_add_and_drop_parameters() -> None:
    payload = call_payload(
        CallStatus.BUSY, CallSid="CAfixed", ParentCallSid="CAparent", Timestamp=None, To=None
    )

    assert payload["CallSid"] == "CAfixed"
    assert payload["ParentCallSid"] == "CAparent"
    assert "Timestamp" not in payload
    assert "To" not in payload
    assert "Missing" not in call_payload(Missing=None)  # dropping what is not there is fine


def test_an_unknown_status_is_allowed() -> None:
    assert call_payload("answered-by-robot")["CallStatus"] == "answered-by-robot"
    payload = sms_payload("teleported")
    assert (payload["MessageStatus"], payload["SmsStatus"]) == ("teleported", "teleported")
    assert "ErrorCode" not in payload


@pytest.mark.parametrize("status", list(SmsStatus))
def test_sms_payload_for_every_status(status: SmsStatus) -> None:
    payload = sms_payload(status)
    event = SmsEvent.from_params(Params(payload))

    assert payload["MessageStatus"] == payload["SmsStatus"] == status.value
    assert payload["MessageSid"] == payload["SmsSid"]
    assert event.status is status
    assert SID.match(event.message_sid) and event.message_sid.startswith("SM")
    assert event.messaging_service_sid is not None and event.messaging_service_sid.startswith("MG")
    assert event.is_inbound is False
    assert event.error_code == {SmsStatus.FAILED: 30008, SmsStatus.UNDELIVERED: 30003}.get(status)
    if status in (SmsStatus.DELIVERED, SmsStatus.UNDELIVERED):
        assert event.raw_dlr_done_date is not None
    else:
        assert "RawDlrDoneDate" not in payload


def test_sms_payload_defaults_to_delivered() -> None:
    assert sms_payload()["MessageStatus"] == "delivered"


def test_inbound_sms_payload_without_media() -> None:
    payload = inbound_sms_payload(body="Hi")
    event = SmsEvent.from_params(Params(payload))

    assert "MessageStatus" not in payload
    assert payload["SmsStatus"] == "received"
    assert payload["MessageSid"] == payload["SmsSid"] == payload["SmsMessageSid"]
    assert payload["MessageSid"].startswith("SM")
    assert event.is_inbound is True
    assert (event.body, event.num_media, event.num_segments, event.media) == ("Hi", 0, 1, ())


def test_inbound_sms_payload_with_media() -> None:
    payload = inbound_sms_payload(
        body="",
        media=["https://example.com/a.jpg", ("https://example.com/b.pdf", "application/pdf")],
        From="+15005550006",
    )
    event = SmsEvent.from_params(Params(payload))

    assert payload["MessageSid"].startswith("MM")
    assert payload["NumMedia"] == "2"
    assert payload["MediaUrl1"] == "https://example.com/b.pdf"
    assert payload["MediaContentType1"] == "application/pdf"
    assert event.from_ == "+15005550006"
    assert event.body == ""
    assert event.media == (
        Media("https://example.com/a.jpg", "image/jpeg"),
        Media("https://example.com/b.pdf", "application/pdf"),
    )


# --- TwilioTestClient -------------------------------------------------------------------------------------


def _recording_app(**config: object) -> tuple[TwilioEvents, list[object]]:
    app = TwilioEvents(**config)  # type: ignore[arg-type]
    seen: list[object] = []
    app.call.on_any(seen.append)
    app.sms.on_any(seen.append)
    return app, seen


def test_callback_signs_with_the_apps_token() -> None:
    app, seen = _recording_app(auth_token="the-apps-token")
    client = TwilioTestClient(app)

    response = client.callback(call_payload())

    assert client.auth_token == "the-apps-token"
    assert response.status_code == 200
    assert len(seen) == 1


def test_callback_signs_the_path_and_query() -> None:
    app, seen = _recording_app(auth_token=TOKEN, path="/hooks")
    client = TwilioTestClient(app)

    assert client.callback(sms_payload(), "/hooks?tenant=7").status_code == 200
    assert len(seen) == 1


@pytest.mark.parametrize("path", ["/hooks/café status?x=a b", "/hooks/caf%C3%A9%20status?x=a%20b"])
def test_callback_signs_the_url_it_actually_sends(path: str) -> None:
    app, seen = _recording_app(auth_token=TOKEN, path="/hooks/café status")
    client = TwilioTestClient(app)

    response = client.callback(call_payload(), path)

    assert response.request.url.raw_path == b"/hooks/caf%C3%A9%20status?x=a%20b"
    assert response.status_code == 200
    assert len(seen) == 1


def test_an_explicit_token_wins() -> None:
    app, seen = _recording_app(auth_token=TOKEN)
    client = TwilioTestClient(app, auth_token="not-the-apps-token")

    assert client.callback(call_payload()).status_code == 403
    assert seen == []


def test_an_explicit_signature_is_sent_as_is() -> None:
    app, seen = _recording_app(auth_token=TOKEN)
    client = TwilioTestClient(app)

    response = client.callback(call_payload(), signature="forged")

    assert response.status_code == 403
    assert seen == []


def test_extra_headers_are_sent() -> None:
    app, seen = _recording_app(auth_token=TOKEN, public_url="https://public.example.com")
    client = TwilioTestClient(app, base_url="https://public.example.com")

    assert client.callback(call_payload(), headers={"X-Request-Id": "1"}).status_code == 200
    response = client.callback(call_payload(), headers={"Content-Type": "application/json"})
    assert response.status_code == 415
    assert len(seen) == 1


def test_another_base_url_is_signed_too() -> None:
    app, seen = _recording_app(auth_token=TOKEN)
    client = TwilioTestClient(app, base_url="https://hooks.example.com:8443")

    assert client.callback(inbound_sms_payload()).status_code == 200
    assert len(seen) == 1


def test_a_mounted_app_is_signed_over_the_mounted_path() -> None:
    app, seen = _recording_app(auth_token=TOKEN)
    client = TwilioTestClient(Starlette(routes=[Mount("/twilio", app=app)]), auth_token=TOKEN)

    assert client.callback(call_payload(), "/twilio/").status_code == 200
    assert len(seen) == 1


def test_without_a_token_on_the_app_the_environment_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "env-token")
    app, seen = _recording_app()
    client = TwilioTestClient(Starlette(routes=[Mount("/twilio", app=app)]))

    assert client.auth_token == "env-token"
    assert client.callback(call_payload(), "/twilio/").status_code == 200
    assert len(seen) == 1


def test_an_app_without_validation_works_with_any_token() -> None:
    app, seen = _recording_app(validate_signature=False)
    client = TwilioTestClient(app)

    assert client.callback(call_payload()).status_code == 200
    assert len(seen) == 1


# --- whole stories: a recorded call, a conference -------------------------------------------------------


def test_a_recorded_call_is_one_call_one_recording_and_its_transcription_in_order() -> None:
    story = recorded_call(text="Back at five.")

    assert [p.get("CallStatus") for p in story[:3]] == ["initiated", "ringing", "in-progress"]
    assert [p.get("RecordingStatus") for p in story[3:6]] == ["in-progress", None, "completed"]
    assert story[4]["CallStatus"] == "completed" and story[4]["SequenceNumber"] == "3"
    assert story[6]["TranscriptionText"] == "Back at five."
    assert len({p["CallSid"] for p in story}) == 1
    assert story[3]["RecordingSid"] == story[4]["RecordingSid"] == story[5]["RecordingSid"]
    assert story[6]["RecordingSid"] == story[3]["RecordingSid"]
    assert story[4]["RecordingUrl"] == story[6]["RecordingUrl"]
    times = [parsedate_to_datetime(p["Timestamp"]) for p in story if "CallbackSource" in p]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(isinstance(value, str) for p in story for value in p.values())


def test_a_conference_with_two_participants_is_numbered_from_one() -> None:
    story = conference_with_two_participants(
        conference_sid="CF1", first_call_sid="CA1", second_call_sid="CA2"
    )

    assert [(p["StatusCallbackEvent"], p.get("CallSid")) for p in story] == [
        ("participant-join", "CA1"),
        ("participant-join", "CA2"),
        ("conference-start", None),
        ("participant-mute", "CA2"),
        ("participant-unmute", "CA2"),
        ("participant-leave", "CA2"),
        ("participant-leave", "CA1"),
        ("conference-end", None),
    ]
    assert [p["SequenceNumber"] for p in story] == [str(n) for n in range(1, 9)]
    assert {p["ConferenceSid"] for p in story} == {"CF1"}
    assert story[3]["Muted"] == "true" and story[4]["Muted"] == "false"
    assert story[-1]["CallSidEndingConference"] == "CA1"


def test_stories_post_through_the_test_client() -> None:
    app = TwilioEvents(auth_token=TOKEN)
    seen: list[str] = []
    app.recording.on_any(lambda event: seen.append(f"recording {event.status}"))
    app.transcription.on_completed(lambda event: seen.append(f"text {event.transcription_text}"))
    app.conference.on("join")(lambda event: seen.append(f"join {event.call_sid}"))

    with TwilioTestClient(app) as client:
        answers = [client.callback(p) for p in [*recorded_call(), *conference_with_two_participants()]]

    assert {answer.status_code for answer in answers} == {200}
    assert seen[:3] == ["recording in-progress", "recording completed", "text Please call me back."]
    assert [line.split()[0] for line in seen[3:]] == ["join", "join"]

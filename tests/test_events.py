"""Typed, frozen events built from a callback's form parameters."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from twilio_events import AnsweredBy, CallEvent, CallStatus, Media, SmsEvent, SmsStatus, UnknownStatus
from twilio_events.events import Params, parse_status
from twilio_events.testing import call_payload, inbound_sms_payload


def call_event(**params: str) -> CallEvent:
    return CallEvent.from_params(Params(params))


def sms_event(*pairs: tuple[str, str], **params: str) -> SmsEvent:
    return SmsEvent.from_params(Params([*pairs, *params.items()]))


# --- statuses ---------------------------------------------------------------------------------------------


def test_call_statuses_are_twilios() -> None:
    assert [s.value for s in CallStatus] == [
        "queued",
        "initiated",
        "ringing",
        "in-progress",
        "completed",
        "busy",
        "failed",
        "no-answer",
        "canceled",
    ]


def test_sms_statuses_are_twilios() -> None:
    assert [s.value for s in SmsStatus] == [
        "accepted",
        "scheduled",
        "queued",
        "sending",
        "sent",
        "failed",
        "delivered",
        "undelivered",
        "receiving",
        "received",
        "read",
        "partially_delivered",
        "canceled",
    ]


def test_statuses_are_strings() -> None:
    assert CallStatus.IN_PROGRESS == "in-progress"  # type: ignore[comparison-overlap]
    assert str(SmsStatus.PARTIALLY_DELIVERED) == "partially_delivered"
    assert f"{CallStatus.NO_ANSWER}" == "no-answer"


def test_terminal_statuses() -> None:
    assert {s for s in CallStatus if s.is_terminal} == {
        CallStatus.COMPLETED,
        CallStatus.BUSY,
        CallStatus.FAILED,
        CallStatus.NO_ANSWER,
        CallStatus.CANCELED,
    }
    assert {s for s in SmsStatus if s.is_terminal} == {
        SmsStatus.FAILED,
        SmsStatus.UNDELIVERED,
        SmsStatus.RECEIVED,
        SmsStatus.READ,
        SmsStatus.CANCELED,
    }


def test_parse_status_keeps_unknown_values_as_strings() -> None:
    assert parse_status(CallStatus, "no-answer") is CallStatus.NO_ANSWER
    assert parse_status(SmsStatus, "read") is SmsStatus.READ
    unknown = parse_status(SmsStatus, "teleported")
    assert unknown == "teleported"
    assert type(unknown) is UnknownStatus and isinstance(unknown, str)
    assert type(str(unknown)) is str and str(unknown) == f"{unknown}" == unknown.value == "teleported"


def test_an_unknown_status_has_the_properties_of_the_status_enums() -> None:
    unknown = parse_status(CallStatus, "answered-by-robot")

    assert unknown.is_terminal is False
    assert repr(unknown) == "UnknownStatus('answered-by-robot')"
    assert {"answered-by-robot": 1}[unknown] == 1
    assert parse_status(AnsweredBy, "machine_end_voicemail").is_machine
    assert not parse_status(AnsweredBy, "human_child").is_machine


# --- call events ------------------------------------------------------------------------------------------


def test_call_event_from_a_full_callback() -> None:
    event = call_event(
        AccountSid="AC1",
        CallSid="CA1",
        CallStatus="completed",
        From="+14155550100",
        To="+14155550199",
        ApiVersion="2010-04-01",
        Direction="outbound-dial",
        Caller="+14155550100",
        Called="+14155550199",
        ForwardedFrom="+14155550111",
        CallerName="ADA",
        ParentCallSid="CA0",
        CallToken="tok",
        Timestamp="Fri, 08 Jan 2016 17:18:38 +0000",
        CallbackSource="call-progress-events",
        SequenceNumber="4",
        CallDuration="57",
        Duration="1",
        SipResponseCode="200",
        RecordingUrl="https://api.twilio.com/rec/RE1",
        RecordingSid="RE1",
        RecordingDuration="55",
        AnsweredBy="human",
        MachineDetectionDuration="1200",
        StirVerstat="TN-Validation-Passed-A",
        StirStatus="A",
        ErrorCode="13227",
        FromCity="OAKLAND",
        ToCountry="US",
        CallerZip="94612",
        CalledState="CA",
    )

    assert event.status is CallStatus.COMPLETED
    assert event.sid == event.call_sid == "CA1"
    assert (event.account_sid, event.from_, event.to, event.api_version) == (
        "AC1",
        "+14155550100",
        "+14155550199",
        "2010-04-01",
    )
    assert event.direction == "outbound-dial"
    assert (event.caller, event.called) == ("+14155550100", "+14155550199")
    assert (event.forwarded_from, event.caller_name, event.parent_call_sid, event.call_token) == (
        "+14155550111",
        "ADA",
        "CA0",
        "tok",
    )
    assert event.timestamp == datetime(2016, 1, 8, 17, 18, 38, tzinfo=UTC)
    assert event.callback_source == "call-progress-events"
    assert event.sequence_number == 4
    assert event.call_duration == 57
    assert event.duration == 1
    assert event.sip_response_code == 200
    assert (event.recording_url, event.recording_sid, event.recording_duration) == (
        "https://api.twilio.com/rec/RE1",
        "RE1",
        55,
    )
    assert event.answered_by == "human"
    assert event.machine_detection_duration == 1200
    assert (event.stir_verstat, event.stir_status) == ("TN-Validation-Passed-A", "A")
    assert event.error_code == 13227
    assert (event.from_city, event.to_country, event.caller_zip, event.called_state) == (
        "OAKLAND",
        "US",
        "94612",
        "CA",
    )


def test_a_minimal_call_event_leaves_the_rest_empty() -> None:
    event = call_event(CallStatus="ringing")

    assert event.status is CallStatus.RINGING
    assert (event.account_sid, event.call_sid, event.from_, event.to) == ("", "", "", "")
    assert event.timestamp is None
    assert event.sequence_number is None
    assert event.call_duration is None
    assert event.error_code is None
    assert event.parent_call_sid is None


def test_timestamps_keep_their_offset() -> None:
    event = call_event(CallStatus="ringing", Timestamp="Fri, 08 Jan 2016 09:18:38 -0800")

    assert event.timestamp == datetime(2016, 1, 8, 17, 18, 38, tzinfo=UTC)
    assert event.timestamp is not None
    assert event.timestamp.utcoffset() == timedelta(hours=-8)
    assert event.timestamp.tzinfo == timezone(timedelta(hours=-8))


@pytest.mark.parametrize(
    ("name", "attribute"),
    [
        ("Timestamp", "timestamp"),
        ("SequenceNumber", "sequence_number"),
        ("CallDuration", "call_duration"),
        ("SipResponseCode", "sip_response_code"),
        ("ErrorCode", "error_code"),
    ],
)
@pytest.mark.parametrize("value", ["", "soon", "1.5"])
def test_unparseable_typed_values_are_none_but_stay_in_raw(name: str, attribute: str, value: str) -> None:
    event = call_event(CallStatus="completed", **{name: value})

    assert getattr(event, attribute) is None
    assert event.raw[name] == value


def test_an_unknown_call_status_is_kept() -> None:
    event = call_event(CallStatus="answered-by-robot")

    assert event.status == "answered-by-robot"
    assert not isinstance(event.status, CallStatus)
    assert not event.status.is_terminal


# --- message events ---------------------------------------------------------------------------------------


def test_sms_status_callback() -> None:
    event = sms_event(
        AccountSid="AC1",
        MessageSid="SM1",
        SmsSid="SM1",
        MessageStatus="undelivered",
        SmsStatus="undelivered",
        MessagingServiceSid="MG1",
        ErrorCode="30003",
        RawDlrDoneDate="2601081718",
        From="+1",
        To="+2",
    )

    assert event.status is SmsStatus.UNDELIVERED
    assert event.sid == event.message_sid == "SM1"
    assert event.sms_sid == "SM1"
    assert event.messaging_service_sid == "MG1"
    assert event.error_code == 30003
    assert event.raw_dlr_done_date == datetime(2026, 1, 8, 17, 18)
    assert event.media == ()
    assert event.is_inbound is False


def test_message_status_wins_over_sms_status() -> None:
    assert sms_event(MessageStatus="delivered", SmsStatus="sent").status is SmsStatus.DELIVERED
    assert sms_event(SmsStatus="sent").status is SmsStatus.SENT


def test_message_sid_falls_back_to_sms_sid() -> None:
    assert sms_event(SmsStatus="sent", SmsSid="SM9").message_sid == "SM9"
    assert sms_event(SmsStatus="sent").message_sid == ""


def test_inbound_message_with_media() -> None:
    event = sms_event(
        SmsStatus="received",
        MessageSid="MM1",
        SmsMessageSid="MM1",
        Body="look",
        NumMedia="3",
        NumSegments="1",
        MediaUrl0="https://api.twilio.com/ME0",
        MediaContentType0="image/jpeg",
        MediaUrl1="https://api.twilio.com/ME1",
        MediaContentType1="video/mp4",
        MediaUrl2="https://api.twilio.com/ME2",
    )

    assert event.is_inbound is True
    assert event.body == "look"
    assert event.sms_message_sid == "MM1"
    assert (event.num_media, event.num_segments) == (3, 1)
    assert event.media == (
        Media("https://api.twilio.com/ME0", "image/jpeg"),
        Media("https://api.twilio.com/ME1", "video/mp4"),
        Media("https://api.twilio.com/ME2", None),
    )
    assert event.media[0].url == "https://api.twilio.com/ME0"
    assert event.media[0].content_type == "image/jpeg"


def test_media_stops_at_the_first_missing_index() -> None:
    event = sms_event(SmsStatus="received", MediaUrl0="u0", MediaUrl2="u2")

    assert event.media == (Media("u0", None),)


def test_no_media_without_media_parameters() -> None:
    assert sms_event(SmsStatus="received", NumMedia="0").media == ()
    assert sms_event(SmsStatus="received").num_media is None


def test_a_received_status_callback_is_not_inbound() -> None:
    assert sms_event(MessageStatus="received", SmsStatus="received").is_inbound is False
    assert sms_event(SmsStatus="delivered").is_inbound is False


def test_whatsapp_and_location_fields_are_typed() -> None:
    event = sms_event(
        SmsStatus="received",
        ProfileName="Ada",
        WaId="14155550100",
        Forwarded="true",
        FrequentlyForwarded="False",
        ButtonText="Yes",
        ButtonPayload="yes-1",
        Latitude="37.7749",
        Longitude="-122.4194",
        Address="1 Main St",
        Label="Home",
        ChannelPrefix="whatsapp",
        EventType="READ",
        OptOutType="STOP",
    )

    assert (event.profile_name, event.wa_id) == ("Ada", "14155550100")
    assert event.forwarded is True
    assert event.frequently_forwarded is False
    assert (event.button_text, event.button_payload) == ("Yes", "yes-1")
    assert event.latitude == pytest.approx(37.7749)
    assert event.longitude == pytest.approx(-122.4194)
    assert (event.address, event.label) == ("1 Main St", "Home")
    assert (event.channel_prefix, event.event_type, event.opt_out_type) == ("whatsapp", "READ", "STOP")


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("TRUE", True), ("0", False), ("maybe", None)])
def test_booleans(value: str, expected: bool | None) -> None:
    assert sms_event(SmsStatus="received", Forwarded=value).forwarded is expected


def test_unparseable_message_values_are_none() -> None:
    event = sms_event(SmsStatus="delivered", RawDlrDoneDate="yesterday", NumMedia="x", Latitude="north")

    assert event.raw_dlr_done_date is None
    assert event.num_media is None
    assert event.latitude is None


# --- raw parameters and immutability ----------------------------------------------------------------------


def test_raw_keeps_everything_as_received() -> None:
    pairs = [
        ("SmsStatus", "received"),
        ("Body", "hi"),
        ("Tag", "first"),
        ("Tag", "second"),
        ("BrandNewTwilioField", "42"),
    ]
    event = sms_event(*pairs)

    assert event.raw.multi_items() == pairs
    assert event.raw["Tag"] == "first"
    assert event.raw.get("Tag") == "first"
    assert event.raw.getlist("Tag") == ["first", "second"]
    assert event.raw["BrandNewTwilioField"] == "42"
    assert event.raw.get("Nope") is None
    assert "Body" in event.raw
    with pytest.raises(KeyError):
        event.raw["Nope"]


def test_params_give_the_first_value_everywhere() -> None:
    params = Params([("a", "1"), ("b", "2"), ("a", "3")])

    assert params["a"] == "1"
    assert dict(params.items()) == {"a": "1", "b": "2"}
    assert list(params.values()) == ["1", "2"]
    assert list(params) == ["a", "b"]
    assert len(params) == 2
    assert params.getlist("a") == ["1", "3"]
    assert Params(params).multi_items() == params.multi_items()
    assert Params({"x": "y"})["x"] == "y"


def test_the_first_repeated_status_decides() -> None:
    event = CallEvent.from_params(Params([("CallStatus", "ringing"), ("CallStatus", "completed")]))

    assert event.status is CallStatus.RINGING


def test_events_are_frozen() -> None:
    event = call_event(CallStatus="ringing", CallSid="CA1")

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.call_sid = "CA2"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sms_event(SmsStatus="sent").status = SmsStatus.DELIVERED  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.extra = "x"  # type: ignore[attr-defined]


def test_events_compare_by_fields_not_raw() -> None:
    first = call_event(CallStatus="ringing", CallSid="CA1")
    second = CallEvent.from_params(Params([("CallStatus", "ringing"), ("CallSid", "CA1"), ("Extra", "x")]))

    assert first == second
    assert first != call_event(CallStatus="busy", CallSid="CA1")
    assert "raw" not in repr(first)


def test_events_can_be_built_directly_for_unit_tests() -> None:
    event = CallEvent(call_sid="CA1", status=CallStatus.BUSY, from_="+1")

    assert (event.sid, event.status, event.from_, event.to) == ("CA1", CallStatus.BUSY, "+1", "")
    assert len(event.raw) == 0
    with pytest.raises(TypeError):
        CallEvent("AC1")  # type: ignore[call-arg]
    assert dataclasses.replace(event, status=CallStatus.COMPLETED).status is CallStatus.COMPLETED


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31)))
def test_twilio_timestamps_parse_as_email_utils_parses_them(moment: datetime) -> None:
    text = format_datetime(moment.replace(microsecond=0, tzinfo=UTC))
    event = CallEvent.from_params(Params([("CallStatus", "ringing"), ("Timestamp", text)]))

    assert event.timestamp == parsedate_to_datetime(text)
    assert event.timestamp is not None and event.timestamp.tzinfo is not None


@pytest.mark.parametrize("text", ["Fri, 08 Jan 2016 17:18:38 -0500", "8 Jan 2016 17:18:38 GMT", "not a date"])
def test_other_timestamp_forms_fall_back_to_email_utils(text: str) -> None:
    event = CallEvent.from_params(Params([("CallStatus", "ringing"), ("Timestamp", text)]))
    try:
        expected = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        expected = None

    assert event.timestamp == expected


@pytest.mark.parametrize(
    "factory", [lambda: call_payload("completed"), lambda: inbound_sms_payload("hi", ["u"])]
)
def test_events_built_from_params_equal_those_built_by_the_constructor(
    factory: Callable[[], dict[str, str]],
) -> None:
    params = Params(list(factory().items()))
    event_type = CallEvent if "CallStatus" in params else SmsEvent
    built = event_type.from_params(params, previous_status="queued", idempotency_key="k")

    by_constructor = event_type(**{f.name: getattr(built, f.name) for f in dataclasses.fields(event_type)})
    assert built == by_constructor
    assert repr(built) == repr(by_constructor)

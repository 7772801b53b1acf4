"""Recognising a Twilio request, and its de-duplication key, as plain function calls."""

from __future__ import annotations

import itertools

import pytest

from twilio_events.kinds import RequestKind, Unrecognised, dedupe_key, recognise
from twilio_events.testing import (
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

# A transcription callback as Twilio sent it to a public project (values shortened, SIDs kept as recorded):
# it carries the call's CallStatus=completed and no CallbackSource.
RECORDED_TRANSCRIPTION = {
    "TranscriptionSid": "TRd16d9b52364b51a7e7b3cb7458017463",
    "Called": "+15024105645",
    "RecordingSid": "RE2b568e31f38645c9c5c3ed190a0da06a",
    "CallStatus": "completed",
    "RecordingUrl": "https://api.twilio.com/2010-04-01/Accounts/AC3f1496421dea2c8446672cdf90ff4c7a"
    "/Recordings/RE2b568e31f38645c9c5c3ed190a0da06a",
    "From": "+14708231590",
    "Direction": "inbound",
    "url": "http://example.ngrok.io/webhooks/twilio/voicemail/store",
    "AccountSid": "AC3f1496421dea2c8446672cdf90ff4c7a",
    "TranscriptionText": "123123 test.",
    "Caller": "+14708231590",
    "TranscriptionStatus": "completed",
    "CallSid": "CAbea03a48a7be37048368488684116087",
    "To": "+15024105645",
    "ForwardedFrom": "+15024105645",
}


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        (call_payload("ringing"), RequestKind.CALL_STATUS),
        (call_payload("completed", CallbackSource=None), RequestKind.CALL_STATUS),
        (call_payload("completed", CallbackSource=None, SequenceNumber=None), RequestKind.CALL_STATUS),
        (incoming_call_payload(), RequestKind.INCOMING_CALL),
        (incoming_call_payload("in-progress", "outbound-api"), RequestKind.INCOMING_CALL),
        (gather_payload("1"), RequestKind.GATHER),
        (gather_payload(speech="billing"), RequestKind.GATHER),
        (dial_action_payload("no-answer"), RequestKind.DIAL_ACTION),
        (dial_action_payload(RecordingUrl="https://api.twilio.com/r/RE1"), RequestKind.DIAL_ACTION),
        (record_action_payload(), RequestKind.RECORD_ACTION),
        (record_action_payload(CallStatus="completed"), RequestKind.RECORD_ACTION),
        (pay_action_payload(), RequestKind.PAY_ACTION),
        (transcription_payload(), RequestKind.TRANSCRIPTION),
        (RECORDED_TRANSCRIPTION, RequestKind.TRANSCRIPTION),
        (recording_status_payload(), RequestKind.RECORDING_STATUS),
        (recording_status_payload(CallStatus="completed"), RequestKind.RECORDING_STATUS),
        (conference_payload("conference-start"), RequestKind.CONFERENCE_STATUS),
        (conference_payload("participant-leave"), RequestKind.CONFERENCE_STATUS),
        (amd_payload("machine_end_beep"), RequestKind.AMD),
        (sms_payload("delivered"), RequestKind.MESSAGE_STATUS),
        (sms_payload("sent", MessageStatus=None), RequestKind.MESSAGE_STATUS),
        (inbound_sms_payload("hi"), RequestKind.INCOMING_MESSAGE),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_each_kind_is_recognised_by_its_documented_fields(payload: dict[str, str], kind: RequestKind) -> None:
    assert recognise(payload).kind is kind


def test_a_status_callback_with_answered_by_is_still_a_status_callback() -> None:
    assert recognise(call_payload("in-progress", AnsweredBy="human")).kind is RequestKind.CALL_STATUS


@pytest.mark.parametrize("payload", [{}, {"CallSid": "CA1"}, {"CallStatus": ""}, {"Digits": "1"}])
def test_a_form_of_no_known_kind_is_unrecognised_with_what_is_recognised(payload: dict[str, str]) -> None:
    with pytest.raises(Unrecognised) as raised:
        recognise(payload)

    for field in ("CallStatus", "MessageStatus", "TranscriptionSid", "RecordingStatus", "AnsweredBy"):
        assert field in str(raised.value)


@pytest.mark.parametrize(
    "kind",
    [k for k in RequestKind if k.answered],
)
def test_requests_whose_answer_twilio_executes_have_no_key_even_with_a_token(kind: RequestKind) -> None:
    payload = {
        RequestKind.INCOMING_CALL: incoming_call_payload(),
        RequestKind.GATHER: gather_payload(),
        RequestKind.DIAL_ACTION: dial_action_payload(),
        RequestKind.RECORD_ACTION: record_action_payload(),
        RequestKind.PAY_ACTION: pay_action_payload(),
        RequestKind.INCOMING_MESSAGE: inbound_sms_payload(),
    }[kind]

    recognised = recognise(payload, "tok-1")

    assert recognised.kind is kind
    assert recognised.key is None
    assert recognised.event_key == "token:tok-1"


def test_twilios_idempotency_token_is_the_key_when_sent() -> None:
    params = call_payload("ringing")

    assert recognise(params, "tok-1").key == "token:tok-1"
    assert recognise(params, "tok-1").key != recognise(params, "tok-2").key


def test_without_a_token_a_call_status_key_is_sid_status_and_sequence() -> None:
    ringing = call_payload("ringing", CallSid="CA1", SequenceNumber="1")
    again = call_payload("ringing", CallSid="CA1", SequenceNumber="1", Timestamp="other")
    later = call_payload("ringing", CallSid="CA1", SequenceNumber="2")

    assert recognise(ringing).key == "call:CA1:ringing:1"
    assert recognise(again).key == recognise(ringing).key
    assert recognise(later).key != recognise(ringing).key


def test_message_keys_use_message_status_and_sid() -> None:
    sent = sms_payload("sent", MessageSid="SM1", SmsSid="SM1")

    assert recognise(sent).key == "sms:SM1:sent:"


def test_a_transcription_never_shares_the_key_of_the_calls_completed_status() -> None:
    completed = call_payload("completed", CallSid="CA1", SequenceNumber=None)
    transcription = transcription_payload(CallSid="CA1")

    assert recognise(transcription).key != recognise(completed).key
    assert recognise(transcription).key == f"transcription:{transcription['TranscriptionSid']}:completed"


def test_distinct_callbacks_of_one_call_never_share_a_key() -> None:
    sid = "CA" + "1" * 32
    participant = {"CallSid": sid}
    requests = [
        *(
            call_payload(status, CallSid=sid, SequenceNumber=str(n))
            for n, status in enumerate(["initiated", "ringing", "in-progress", "completed"])
        ),
        transcription_payload(CallSid=sid),
        transcription_payload(CallSid=sid),
        transcription_payload(status="failed", CallSid=sid),
        recording_status_payload("in-progress", CallSid=sid, RecordingSid="RE1"),
        recording_status_payload("completed", CallSid=sid, RecordingSid="RE1"),
        recording_status_payload("completed", CallSid=sid, RecordingSid="RE2"),
        *(
            conference_payload("participant-mute", sequence=n, ConferenceSid="CF1", **participant)
            for n in range(3)
        ),
        conference_payload("participant-join", sequence=3, ConferenceSid="CF1", **participant),
        amd_payload("human", CallSid=sid),
        amd_payload("machine_start", CallSid=sid),
    ]

    keys = [recognise(payload).key for payload in requests]

    assert None not in keys
    assert len(set(keys)) == len(keys), keys
    for first, second in itertools.combinations(requests, 2):
        assert dedupe_key(recognise(first).kind, first, None) != dedupe_key(
            recognise(second).kind, second, None
        )


def test_the_route_is_the_status_for_statuses_and_the_kind_for_webhooks() -> None:
    assert recognise(call_payload("busy")).route == "busy"
    assert recognise(inbound_sms_payload()).route == "received"
    assert recognise(incoming_call_payload()).route == "incoming-call"
    assert recognise(gather_payload()).route == "gather"
    assert recognise(incoming_call_payload()).channel == "call"
    assert recognise(inbound_sms_payload()).channel == "sms"


@pytest.mark.parametrize(
    ("payload", "channel", "sid_field", "status"),
    [
        (recording_status_payload("in-progress"), "recording", "RecordingSid", "in-progress"),
        (transcription_payload(status="failed"), "transcription", "TranscriptionSid", "failed"),
        (RECORDED_TRANSCRIPTION, "transcription", "TranscriptionSid", "completed"),
        (conference_payload("participant-hold"), "conference", "ConferenceSid", "participant-hold"),
        (amd_payload("fax"), "amd", "CallSid", "fax"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_the_other_voice_callbacks_go_to_their_own_channel_by_their_own_sid_and_status(
    payload: dict[str, str], channel: str, sid_field: str, status: str
) -> None:
    recognised = recognise(payload)

    assert (recognised.channel, recognised.sid, recognised.status) == (channel, payload[sid_field], status)
    assert recognised.route == status and recognised.is_status
    assert recognised.key is not None and recognised.key.startswith(f"{channel}:")


def test_the_unrecognised_message_names_every_kind_received() -> None:
    with pytest.raises(Unrecognised) as raised:
        recognise({"AccountSid": "AC1"})

    message = str(raised.value)
    for words in (
        "CallStatus (call status callbacks",
        "MessageStatus or SmsStatus",
        "TranscriptionSid or TranscriptionStatus (transcriptions)",
        "RecordingStatus (recording status callbacks)",
        "ConferenceSid with StatusCallbackEvent (conference status callbacks)",
        "AnsweredBy with CallSid (answering machine detection)",
    ):
        assert words in message
    assert "not received" not in message

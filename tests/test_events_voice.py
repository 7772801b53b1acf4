"""The events of recordings, transcriptions, conferences and AMD results: every parameter Twilio documents
for each callback is a typed field, statuses are enums, and unknown values are kept."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from twilio_events import (
    AmdEvent,
    AnsweredBy,
    ConferenceEvent,
    ConferenceEventType,
    RecordingEvent,
    RecordingStatus,
    SmsEvent,
    TranscriptionEvent,
    TranscriptionStatus,
)
from twilio_events.events import CallStatus, Params

RE = "RE" + "1" * 32
CA = "CA" + "2" * 32
CF = "CF" + "3" * 32
AC = "AC" + "4" * 32
TR = "TR" + "5" * 32

# Each callback with every parameter Twilio documents for it (docs: /docs/voice/api/recording,
# "RecordingStatusCallback"; /docs/voice/twiml/record, "transcribeCallback";
# /docs/voice/twiml/conference, "statusCallback" (the deprecated conference-record-end parameters aside);
# /docs/voice/answering-machine-detection, "AsyncAmdStatusCallback").
RECORDING = {
    "AccountSid": AC,
    "CallSid": CA,
    "ConferenceSid": CF,
    "RecordingSid": RE,
    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{AC}/Recordings/{RE}",
    "RecordingStatus": "completed",
    "RecordingDuration": "61",
    "RecordingChannels": "2",
    "RecordingStartTime": "Fri, 08 Jan 2016 17:18:38 +0000",
    "RecordingSource": "StartConferenceRecordingAPI",
    "RecordingTrack": "both",
    "ErrorCode": "0",
}
TRANSCRIPTION = {
    "AccountSid": AC,
    "ApiVersion": "2010-04-01",
    "CallSid": CA,
    "CallStatus": "completed",
    "Called": "+15024105645",
    "Caller": "+14708231590",
    "Direction": "inbound",
    "ForwardedFrom": "+15024105645",
    "From": "+14708231590",
    "To": "+15024105645",
    "RecordingSid": RE,
    "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{AC}/Recordings/{RE}",
    "TranscriptionSid": TR,
    "TranscriptionStatus": "completed",
    "TranscriptionText": "123123 test.",
    "TranscriptionType": "fast",
    "TranscriptionUrl": f"https://api.twilio.com/2010-04-01/Accounts/{AC}/Transcriptions/{TR}",
}
CONFERENCE = {
    "AccountSid": AC,
    "ConferenceSid": CF,
    "FriendlyName": "support-room",
    "SequenceNumber": "7",
    "Timestamp": "Fri, 08 Jan 2016 17:18:38 +0000",
    "StatusCallbackEvent": "participant-leave",
    "CallSid": CA,
    "ParticipantLabel": "customer",
    "Muted": "false",
    "Hold": "true",
    "Coaching": "false",
    "EndConferenceOnExit": "true",
    "StartConferenceOnEnter": "false",
    "ParticipantCallStatus": "completed",
    "ReasonParticipantLeft": "participant_hung_up",
    "CallSidEndingConference": CA,
    "ParticipantLabelEndingConference": "customer",
    "ReasonConferenceEnded": "participant-with-end-conference-on-exit-left",
    "Reason": "Participant CA... with end_conference_on_exit left the conference",
    "ReasonAnnouncementFailed": "",
    "AnnounceUrl": "",
}
AMD = {"AccountSid": AC, "CallSid": CA, "AnsweredBy": "machine_end_beep", "MachineDetectionDuration": "4200"}

STATUS_PARAMETERS = {"RecordingStatus", "TranscriptionStatus", "StatusCallbackEvent", "AnsweredBy"}


def typed_parameters(event_type: type) -> set[str]:
    return {f.metadata["param"] for f in dataclasses.fields(event_type) if "param" in f.metadata}


@pytest.mark.parametrize(
    ("event_type", "documented"),
    [
        (RecordingEvent, RECORDING),
        (TranscriptionEvent, TRANSCRIPTION),
        (ConferenceEvent, CONFERENCE),
        (AmdEvent, AMD),
    ],
)
def test_every_documented_parameter_is_a_typed_field(event_type: type, documented: dict[str, str]) -> None:
    assert set(documented) - STATUS_PARAMETERS <= typed_parameters(event_type)


def test_a_recording_status_callback() -> None:
    event = RecordingEvent.from_params(Params(RECORDING), previous_status="in-progress", idempotency_key="k")

    assert event.status is RecordingStatus.COMPLETED and event.status.is_terminal
    assert (event.sid, event.call_sid, event.conference_sid) == (RE, CA, CF)
    assert event.recording_url == RECORDING["RecordingUrl"]
    assert (event.recording_duration, event.recording_channels) == (61, 2)
    assert event.recording_start_time == datetime(2016, 1, 8, 17, 18, 38, tzinfo=UTC)
    assert (event.recording_source, event.recording_track, event.error_code) == (
        "StartConferenceRecordingAPI",
        "both",
        0,
    )
    assert (event.previous_status, event.idempotency_key, event.raw["RecordingSid"]) == (
        "in-progress",
        "k",
        RE,
    )


def test_a_transcription_carries_its_text_and_the_calls_parameters() -> None:
    event = TranscriptionEvent.from_params(Params(TRANSCRIPTION))

    assert event.status is TranscriptionStatus.COMPLETED
    assert (event.sid, event.transcription_text, event.transcription_type) == (TR, "123123 test.", "fast")
    assert event.transcription_url == TRANSCRIPTION["TranscriptionUrl"]
    assert (event.recording_sid, event.call_sid) == (RE, CA)
    assert event.call_status is CallStatus.COMPLETED
    assert (event.from_, event.to, event.direction, event.forwarded_from) == (
        "+14708231590",
        "+15024105645",
        "inbound",
        "+15024105645",
    )


def test_a_conference_status_callback() -> None:
    event = ConferenceEvent.from_params(Params(CONFERENCE))

    assert event.status is ConferenceEventType.PARTICIPANT_LEAVE and not event.status.is_terminal
    assert (event.sid, event.friendly_name, event.sequence_number) == (CF, "support-room", 7)
    assert event.timestamp == datetime(2016, 1, 8, 17, 18, 38, tzinfo=UTC)
    assert (event.muted, event.hold, event.coaching) == (False, True, False)
    assert (event.end_conference_on_exit, event.start_conference_on_enter) == (True, False)
    assert (event.participant_label, event.participant_call_status) == ("customer", "completed")
    assert event.reason_participant_left == "participant_hung_up"
    assert event.reason_conference_ended == "participant-with-end-conference-on-exit-left"
    assert event.call_sid_ending_conference == CA
    assert ConferenceEventType("conference-end").is_terminal


def test_an_amd_result() -> None:
    event = AmdEvent.from_params(Params(AMD))

    assert event.status is AnsweredBy.MACHINE_END_BEEP and event.answered_by is event.status
    assert event.status.is_machine and not AnsweredBy.HUMAN.is_machine and not AnsweredBy.FAX.is_machine
    assert (event.sid, event.machine_detection_duration) == (CA, 4200)


def test_statuses_are_the_values_twilio_documents() -> None:
    assert [s.value for s in RecordingStatus] == ["in-progress", "completed", "absent", "failed"]
    assert [s.value for s in TranscriptionStatus] == ["in-progress", "completed", "failed"]
    assert [s.value for s in AnsweredBy] == [
        "human",
        "machine_start",
        "machine_end_beep",
        "machine_end_silence",
        "machine_end_other",
        "fax",
        "unknown",
    ]
    assert [s.value for s in ConferenceEventType] == [
        "conference-start",
        "conference-end",
        "participant-join",
        "participant-leave",
        "participant-mute",
        "participant-unmute",
        "participant-hold",
        "participant-unhold",
        "participant-modify",
        "participant-speech-start",
        "participant-speech-stop",
        "announcement-end",
        "announcement-fail",
    ]


def test_unknown_statuses_are_kept_as_strings() -> None:
    assert RecordingEvent.from_params(Params({**RECORDING, "RecordingStatus": "paused"})).status == "paused"
    assert ConferenceEvent.from_params(Params({**CONFERENCE, "StatusCallbackEvent": "x"})).status == "x"
    assert AmdEvent.from_params(Params({**AMD, "AnsweredBy": "robot"})).status == "robot"


def test_new_events_are_frozen_and_can_be_built_directly() -> None:
    event = RecordingEvent(status=RecordingStatus.ABSENT, recording_sid=RE, error_code=16101)

    with pytest.raises(dataclasses.FrozenInstanceError):
        event.status = RecordingStatus.COMPLETED  # type: ignore[misc]
    assert event.sid == RE and event.recording_url is None


def test_whatsapp_referrals_replies_and_channel_metadata_are_typed() -> None:
    event = SmsEvent.from_params(
        Params(
            {
                "SmsStatus": "received",
                "MessageType": "text",
                "ReferralBody": "Get 10% off",
                "ReferralHeadline": "Spring sale",
                "ReferralSourceId": "120210000000",
                "ReferralSourceType": "ad",
                "ReferralSourceUrl": "https://fb.me/abc",
                "ReferralMediaId": "98765",
                "ReferralMediaContentType": "image/jpeg",
                "ReferralMediaUrl": "https://api.twilio.com/media/ME1",
                "ReferralNumMedia": "1",
                "ReferralCtwaClid": "ARAkLkA8rmlFeiCktEJQ",
                "OriginalRepliedMessageSender": "whatsapp:+14155550100",
                "OriginalRepliedMessageSid": "SM" + "6" * 32,
                "ChannelMetadata": '{"type": "whatsapp", "data": {"context": {"ProfileName": "Ada"}}}',
            }
        )
    )

    assert event.message_type == "text"
    assert (event.referral_body, event.referral_headline) == ("Get 10% off", "Spring sale")
    assert (event.referral_source_id, event.referral_source_type) == ("120210000000", "ad")
    assert event.referral_source_url == "https://fb.me/abc"
    assert (event.referral_media_id, event.referral_media_content_type) == ("98765", "image/jpeg")
    assert (event.referral_media_url, event.referral_num_media) == ("https://api.twilio.com/media/ME1", 1)
    assert event.referral_ctwa_clid == "ARAkLkA8rmlFeiCktEJQ"
    assert event.original_replied_message_sender == "whatsapp:+14155550100"
    assert event.original_replied_message_sid == "SM" + "6" * 32
    assert event.channel_metadata is not None
    assert event.channel_metadata["data"]["context"]["ProfileName"] == "Ada"
    with pytest.raises(TypeError):
        event.channel_metadata["type"] = "sms"  # type: ignore[index]
    assert SmsEvent.from_params(Params({"ChannelMetadata": "not json"})).channel_metadata is None

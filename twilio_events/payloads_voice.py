"""Payloads of the voice callbacks that are neither status callbacks nor TwiML requests: transcriptions,
recording status callbacks, conference status callbacks and answering machine detection results."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from .events import CallStatus
from .payloads import (
    API_VERSION,
    CALLEE,
    TEST_ACCOUNT_SID,
    Payload,
    apply_overrides,
    new_sid,
    recording_url,
    voice_request,
)


def transcription_payload(
    text: str = "Please call me back.", status: str = "completed", **overrides: str | None
) -> Payload:
    """A `<Record transcribeCallback>` transcription: it carries the call's CallStatus too."""
    payload = voice_request(CallStatus.COMPLETED, "inbound")
    recording_sid = overrides.get("RecordingSid") or new_sid("RE")  # its URL names the same SID
    transcription_sid = new_sid("TR")
    payload.update(
        TranscriptionSid=transcription_sid,
        TranscriptionStatus=status,
        TranscriptionText=text,
        TranscriptionType="fast",
        TranscriptionUrl=f"https://api.twilio.com/{API_VERSION}/Accounts/{TEST_ACCOUNT_SID}"
        f"/Transcriptions/{transcription_sid}",
        RecordingSid=recording_sid,
        RecordingUrl=recording_url(recording_sid),
        ForwardedFrom=CALLEE,
        url="https://example.com/voicemail",
    )
    if status != "completed":
        del payload["TranscriptionText"]
    return apply_overrides(payload, overrides)


def recording_status_payload(status: str = "completed", **overrides: str | None) -> Payload:
    """A recording status callback (`recordingStatusCallback`): no CallStatus, no From/To."""
    recording_sid = overrides.get("RecordingSid") or new_sid("RE")  # its URL names the same SID
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "CallSid": new_sid("CA"),
        "ErrorCode": "0",
        "RecordingChannels": "1",
        "RecordingDuration": "9" if status == "completed" else "",
        "RecordingSid": recording_sid,
        "RecordingSource": "RecordVerb",
        "RecordingStartTime": format_datetime(datetime.now(UTC)),
        "RecordingStatus": status,
        "RecordingTrack": "both",
        "RecordingUrl": recording_url(recording_sid),
    }
    return apply_overrides(payload, overrides)


def conference_payload(
    event: str = "participant-join", sequence: int = 1, **overrides: str | None
) -> Payload:
    """A conference status callback (`StatusCallbackEvent`: conference-start, participant-join, ...), with
    the parameters Twilio adds for that event (`Muted` on mute, `ReasonParticipantLeft` on leave, ...)."""
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "ConferenceSid": new_sid("CF"),
        "FriendlyName": "support-room",
        "SequenceNumber": str(sequence),
        "StatusCallbackEvent": event,
        "Timestamp": format_datetime(datetime.now(UTC)),
    }
    if event.startswith(("participant-", "announcement-")):
        payload.update(
            CallSid=new_sid("CA"),
            Coaching="false",
            EndConferenceOnExit="false",
            Hold=str(event == "participant-hold").lower(),
            Muted=str(event == "participant-mute").lower(),
            StartConferenceOnEnter="true",
        )
    if event == "participant-leave":
        payload.update(ParticipantCallStatus="completed", ReasonParticipantLeft="participant_hung_up")
    elif event == "conference-end":
        payload.update(
            CallSidEndingConference=new_sid("CA"),
            ReasonConferenceEnded="last-participant-left",
            Reason="Participant hung up",
        )
    elif event.startswith("announcement-"):
        payload["AnnounceUrl"] = "https://example.com/announcement.xml"
        if event == "announcement-fail":
            payload["ReasonAnnouncementFailed"] = "Internal error"
    return apply_overrides(payload, overrides)


def amd_payload(answered_by: str = "human", **overrides: str | None) -> Payload:
    """An asynchronous answering machine detection result (`AsyncAmdStatusCallback`)."""
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "AnsweredBy": answered_by,
        "CallSid": new_sid("CA"),
        "MachineDetectionDuration": "2340",
    }
    return apply_overrides(payload, overrides)

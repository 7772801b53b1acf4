"""Whole stories as Twilio tells them: the callbacks of a recorded call, of a conference, in the order sent.

Each function returns the form payloads (built by `twilio_events.testing`'s factories) one story sends,
sharing its SIDs and with advancing `Timestamp`s, for a test to post in order (or shuffled, as Twilio may
deliver them).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from .payloads import Payload, call_payload, new_sid
from .payloads_voice import conference_payload, recording_status_payload, transcription_payload


def recorded_call(
    *,
    text: str = "Please call me back.",
    call_sid: str | None = None,
    recording_sid: str | None = None,
    transcription_sid: str | None = None,
    start: datetime | None = None,
) -> list[Payload]:
    """A call recorded and transcribed: initiated, ringing, in-progress, the recording starting, the call
    completed (with the recording's URL), the recording completed, then its transcription."""
    call_sid = call_sid or new_sid("CA")
    recording_sid = recording_sid or new_sid("RE")
    transcription_sid = transcription_sid or new_sid("TR")
    clock = _Clock(start)
    one_call = {"CallSid": call_sid}
    recording = {"CallSid": call_sid, "RecordingSid": recording_sid, "RecordingSource": "RecordVerb"}
    statuses = [
        call_payload(status, SequenceNumber=str(n), Timestamp=clock.tick(), **one_call)
        for n, status in enumerate(["initiated", "ringing", "in-progress"])
    ]
    started = recording_status_payload("in-progress", RecordingStartTime=clock.now(), **recording)
    recording_url = started["RecordingUrl"]
    completed = call_payload(
        "completed",
        SequenceNumber="3",
        Timestamp=clock.tick(seconds=20),
        RecordingSid=recording_sid,
        RecordingUrl=recording_url,
        RecordingDuration="19",
        **one_call,
    )
    return [
        *statuses,
        started,
        completed,
        recording_status_payload(
            "completed",
            RecordingStartTime=started["RecordingStartTime"],
            RecordingDuration="19",
            **recording,
        ),
        transcription_payload(
            text,
            TranscriptionSid=transcription_sid,
            RecordingSid=recording_sid,
            RecordingUrl=recording_url,
            Direction=completed["Direction"],
            From=completed["From"],
            To=completed["To"],
            Caller=completed["Caller"],
            Called=completed["Called"],
            **one_call,
        ),
    ]


def conference_with_two_participants(
    *,
    conference_sid: str | None = None,
    first_call_sid: str | None = None,
    second_call_sid: str | None = None,
    friendly_name: str = "support-room",
    start: datetime | None = None,
) -> list[Payload]:
    """A conference two callers join: the first (the agent) joins, the second joins and the conference
    starts (Twilio starts one when two are in and one has startConferenceOnEnter), the second is muted and
    unmuted and leaves, the first leaves and the conference ends (`SequenceNumber` 1 to 8)."""
    conference_sid = conference_sid or new_sid("CF")
    first = first_call_sid or new_sid("CA")
    second = second_call_sid or new_sid("CA")
    clock = _Clock(start)
    agent = {"ParticipantLabel": "agent", "EndConferenceOnExit": "true"}
    customer = {"ParticipantLabel": "customer", "StartConferenceOnEnter": "false"}
    steps: list[tuple[str, str | None, dict[str, str]]] = [
        ("participant-join", first, agent),
        ("participant-join", second, customer),
        ("conference-start", None, {}),
        ("participant-mute", second, customer),
        ("participant-unmute", second, customer),
        ("participant-leave", second, customer),
        ("participant-leave", first, agent),
        (
            "conference-end",
            None,
            {
                "CallSidEndingConference": first,
                "ParticipantLabelEndingConference": "agent",
                "ReasonConferenceEnded": "participant-with-end-conference-on-exit-left",
                "Reason": "Participant with end_conference_on_exit left the conference",
            },
        ),
    ]
    return [
        conference_payload(
            event,
            sequence=n,
            ConferenceSid=conference_sid,
            FriendlyName=friendly_name,
            Timestamp=clock.tick(),
            **({"CallSid": call_sid} if call_sid else {}),
            **extra,
        )
        for n, (event, call_sid, extra) in enumerate(steps, start=1)
    ]


class _Clock:
    """Twilio's RFC 2822 timestamps, a few seconds apart."""

    def __init__(self, start: datetime | None) -> None:
        self._at = start or datetime.now(UTC)

    def now(self) -> str:
        return format_datetime(self._at)

    def tick(self, seconds: float = 3) -> str:
        self._at += timedelta(seconds=seconds)
        return self.now()

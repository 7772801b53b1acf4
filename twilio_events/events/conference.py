"""Conferences: `ConferenceEventType` (Twilio's `StatusCallbackEvent`) and `ConferenceEvent`."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from .base import (
    _NO_STATUS,
    Params,
    UnknownStatus,
    _bool,
    _Event,
    _int,
    _required,
    _rfc2822,
    _specs_of,
    param,
    parse_status,
)


class ConferenceEventType(enum.StrEnum):
    """The values Twilio sends in a conference status callback's `StatusCallbackEvent`."""

    CONFERENCE_START = "conference-start"
    CONFERENCE_END = "conference-end"
    PARTICIPANT_JOIN = "participant-join"
    PARTICIPANT_LEAVE = "participant-leave"
    PARTICIPANT_MUTE = "participant-mute"
    PARTICIPANT_UNMUTE = "participant-unmute"
    PARTICIPANT_HOLD = "participant-hold"
    PARTICIPANT_UNHOLD = "participant-unhold"
    PARTICIPANT_MODIFY = "participant-modify"
    PARTICIPANT_SPEECH_START = "participant-speech-start"
    PARTICIPANT_SPEECH_STOP = "participant-speech-stop"
    ANNOUNCEMENT_END = "announcement-end"
    ANNOUNCEMENT_FAIL = "announcement-fail"

    @property
    def is_terminal(self) -> bool:
        """True for the end of the conference."""
        return self is ConferenceEventType.CONFERENCE_END


CONFERENCE_SUBSCRIPTIONS: dict[str, tuple[ConferenceEventType, ...]] = {
    "start": (ConferenceEventType.CONFERENCE_START,),
    "end": (ConferenceEventType.CONFERENCE_END,),
    "join": (ConferenceEventType.PARTICIPANT_JOIN,),
    "leave": (ConferenceEventType.PARTICIPANT_LEAVE,),
    "mute": (ConferenceEventType.PARTICIPANT_MUTE, ConferenceEventType.PARTICIPANT_UNMUTE),
    "hold": (ConferenceEventType.PARTICIPANT_HOLD, ConferenceEventType.PARTICIPANT_UNHOLD),
    "modify": (ConferenceEventType.PARTICIPANT_MODIFY,),
    "speaker": (ConferenceEventType.PARTICIPANT_SPEECH_START, ConferenceEventType.PARTICIPANT_SPEECH_STOP),
    "announcement": (ConferenceEventType.ANNOUNCEMENT_END, ConferenceEventType.ANNOUNCEMENT_FAIL),
}
"""The names `<Conference statusCallbackEvent>` subscribes with -> the events each one sends."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ConferenceEvent(_Event):
    """A conference status callback (`<Conference statusCallback>`, or a participant's) from Twilio."""

    status: ConferenceEventType | UnknownStatus = _NO_STATUS
    conference_sid: str = _required("ConferenceSid")
    friendly_name: str | None = param("FriendlyName")
    timestamp: datetime | None = param("Timestamp", _rfc2822)
    sequence_number: int | None = param("SequenceNumber", _int)
    call_sid: str | None = param("CallSid")
    participant_label: str | None = param("ParticipantLabel")
    muted: bool | None = param("Muted", _bool)
    hold: bool | None = param("Hold", _bool)
    coaching: bool | None = param("Coaching", _bool)
    end_conference_on_exit: bool | None = param("EndConferenceOnExit", _bool)
    start_conference_on_enter: bool | None = param("StartConferenceOnEnter", _bool)
    participant_call_status: str | None = param("ParticipantCallStatus")
    reason_participant_left: str | None = param("ReasonParticipantLeft")
    call_sid_ending_conference: str | None = param("CallSidEndingConference")
    participant_label_ending_conference: str | None = param("ParticipantLabelEndingConference")
    reason_conference_ended: str | None = param("ReasonConferenceEnded")
    reason: str | None = param("Reason")
    reason_announcement_failed: str | None = param("ReasonAnnouncementFailed")
    announce_url: str | None = param("AnnounceUrl")

    @property
    def sid(self) -> str:
        """The conference SID (the key of this event's resource)."""
        return self.conference_sid

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> ConferenceEvent:
        """Build the event from a callback's form parameters (`extra`: previous_status, idempotency_key)."""
        values = cls._values(params, extra)
        values["status"] = parse_status(ConferenceEventType, params.get("StatusCallbackEvent", ""))
        return cls._build(values)


_specs_of(ConferenceEvent)

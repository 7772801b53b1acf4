"""Recordings and their transcriptions: `RecordingEvent` and `TranscriptionEvent`, with their statuses."""

from __future__ import annotations

import dataclasses
import enum
from datetime import datetime
from typing import Any

from .base import (
    _NO_STATUS,
    Params,
    UnknownStatus,
    _Event,
    _int,
    _required,
    _rfc2822,
    _specs_of,
    param,
    parse_status,
)
from .call import CallStatus, _CallLeg


class RecordingStatus(enum.StrEnum):
    """The values Twilio sends in `RecordingStatus`."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    ABSENT = "absent"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True once the recording is available, or will never be."""
        return self is not RecordingStatus.IN_PROGRESS


class TranscriptionStatus(enum.StrEnum):
    """The values Twilio sends in `TranscriptionStatus`."""

    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """True once the transcription has its text, or will never have it."""
        return self is not TranscriptionStatus.IN_PROGRESS


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordingEvent(_Event):
    """A recording status callback (`recordingStatusCallback`) from Twilio."""

    status: RecordingStatus | UnknownStatus = _NO_STATUS
    recording_sid: str = _required("RecordingSid")
    recording_url: str | None = param("RecordingUrl")
    recording_duration: int | None = param("RecordingDuration", _int)
    recording_channels: int | None = param("RecordingChannels", _int)
    recording_source: str | None = param("RecordingSource")
    recording_start_time: datetime | None = param("RecordingStartTime", _rfc2822)
    recording_track: str | None = param("RecordingTrack")
    call_sid: str | None = param("CallSid")
    conference_sid: str | None = param("ConferenceSid")

    @property
    def sid(self) -> str:
        """The recording SID (the key of this event's resource)."""
        return self.recording_sid

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> RecordingEvent:
        """Build the event from a callback's form parameters (`extra`: previous_status, idempotency_key)."""
        values = cls._values(params, extra)
        values["status"] = parse_status(RecordingStatus, params.get("RecordingStatus", ""))
        return cls._build(values)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TranscriptionEvent(_CallLeg):
    """A transcription callback (`<Record transcribeCallback>`): the text, and the call's parameters."""

    status: TranscriptionStatus | UnknownStatus = _NO_STATUS
    transcription_sid: str = _required("TranscriptionSid")
    transcription_text: str | None = param("TranscriptionText")
    transcription_url: str | None = param("TranscriptionUrl")
    transcription_type: str | None = param("TranscriptionType")
    recording_sid: str | None = param("RecordingSid")
    recording_url: str | None = param("RecordingUrl")
    call_status: CallStatus | UnknownStatus | None = param(
        "CallStatus", lambda value: parse_status(CallStatus, value)
    )

    @property
    def sid(self) -> str:
        """The transcription SID (the key of this event's resource)."""
        return self.transcription_sid

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> TranscriptionEvent:
        """Build the event from a callback's form parameters (`extra`: previous_status, idempotency_key)."""
        values = cls._values(params, extra)
        values["status"] = parse_status(TranscriptionStatus, params.get("TranscriptionStatus", ""))
        return cls._build(values)


_specs_of(RecordingEvent)
_specs_of(TranscriptionEvent)

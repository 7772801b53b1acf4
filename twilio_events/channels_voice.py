"""The channels of Twilio's other voice callbacks: recordings, transcriptions, conferences, AMD results."""

from __future__ import annotations

from .channels import Channel, _StatusDecorator
from .events import (
    CONFERENCE_SUBSCRIPTIONS,
    AmdEvent,
    AnsweredBy,
    ConferenceEvent,
    ConferenceEventType,
    RecordingEvent,
    RecordingStatus,
    TranscriptionEvent,
    TranscriptionStatus,
)


class RecordingChannel(Channel[RecordingEvent, RecordingStatus]):
    """Recording status callbacks, one decorator per `RecordingStatus`."""

    name = "recording"
    event_type = RecordingEvent
    status_type = RecordingStatus

    on_in_progress = _StatusDecorator(RecordingStatus.IN_PROGRESS)
    on_completed = _StatusDecorator(RecordingStatus.COMPLETED)
    on_absent = _StatusDecorator(RecordingStatus.ABSENT)
    on_failed = _StatusDecorator(RecordingStatus.FAILED)


class TranscriptionChannel(Channel[TranscriptionEvent, TranscriptionStatus]):
    """Transcription callbacks, one decorator per `TranscriptionStatus`."""

    name = "transcription"
    event_type = TranscriptionEvent
    status_type = TranscriptionStatus

    on_in_progress = _StatusDecorator(TranscriptionStatus.IN_PROGRESS)
    on_completed = _StatusDecorator(TranscriptionStatus.COMPLETED)
    on_failed = _StatusDecorator(TranscriptionStatus.FAILED)


class ConferenceChannel(Channel[ConferenceEvent, ConferenceEventType]):
    """Conference status callbacks, one decorator per `StatusCallbackEvent`.

    `on()` also takes the names `<Conference statusCallbackEvent>` subscribes with: `on("mute")` is
    `on_participant_mute` and `on_participant_unmute` at once, `on("speaker")` both speech events, ...
    """

    name = "conference"
    event_type = ConferenceEvent
    status_type = ConferenceEventType
    aliases = CONFERENCE_SUBSCRIPTIONS

    on_conference_start = _StatusDecorator(ConferenceEventType.CONFERENCE_START)
    on_conference_end = _StatusDecorator(ConferenceEventType.CONFERENCE_END)
    on_participant_join = _StatusDecorator(ConferenceEventType.PARTICIPANT_JOIN)
    on_participant_leave = _StatusDecorator(ConferenceEventType.PARTICIPANT_LEAVE)
    on_participant_mute = _StatusDecorator(ConferenceEventType.PARTICIPANT_MUTE)
    on_participant_unmute = _StatusDecorator(ConferenceEventType.PARTICIPANT_UNMUTE)
    on_participant_hold = _StatusDecorator(ConferenceEventType.PARTICIPANT_HOLD)
    on_participant_unhold = _StatusDecorator(ConferenceEventType.PARTICIPANT_UNHOLD)
    on_participant_modify = _StatusDecorator(ConferenceEventType.PARTICIPANT_MODIFY)
    on_participant_speech_start = _StatusDecorator(ConferenceEventType.PARTICIPANT_SPEECH_START)
    on_participant_speech_stop = _StatusDecorator(ConferenceEventType.PARTICIPANT_SPEECH_STOP)
    on_announcement_end = _StatusDecorator(ConferenceEventType.ANNOUNCEMENT_END)
    on_announcement_fail = _StatusDecorator(ConferenceEventType.ANNOUNCEMENT_FAIL)


class AmdChannel(Channel[AmdEvent, AnsweredBy]):
    """Asynchronous answering machine detection results, one decorator per `AnsweredBy` value."""

    name = "amd"
    event_type = AmdEvent
    status_type = AnsweredBy

    on_human = _StatusDecorator(AnsweredBy.HUMAN)
    on_machine_start = _StatusDecorator(AnsweredBy.MACHINE_START)
    on_machine_end_beep = _StatusDecorator(AnsweredBy.MACHINE_END_BEEP)
    on_machine_end_silence = _StatusDecorator(AnsweredBy.MACHINE_END_SILENCE)
    on_machine_end_other = _StatusDecorator(AnsweredBy.MACHINE_END_OTHER)
    on_fax = _StatusDecorator(AnsweredBy.FAX)
    on_unknown = _StatusDecorator(AnsweredBy.UNKNOWN)

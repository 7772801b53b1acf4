"""Typed, frozen events built from the form parameters of a Twilio callback, one module per family."""

from __future__ import annotations

from .amd import AmdEvent, AnsweredBy
from .base import Params, UnknownStatus, param, parse_status
from .call import CallEvent, CallStatus
from .conference import CONFERENCE_SUBSCRIPTIONS, ConferenceEvent, ConferenceEventType
from .message import Media, SmsEvent, SmsStatus
from .recording import RecordingEvent, RecordingStatus, TranscriptionEvent, TranscriptionStatus
from .stream import StreamEvent

Event = CallEvent | SmsEvent | RecordingEvent | TranscriptionEvent | ConferenceEvent | AmdEvent | StreamEvent
"""Any event a handler can receive."""

__all__ = [
    "CONFERENCE_SUBSCRIPTIONS",
    "AmdEvent",
    "AnsweredBy",
    "CallEvent",
    "CallStatus",
    "ConferenceEvent",
    "ConferenceEventType",
    "Event",
    "Media",
    "Params",
    "RecordingEvent",
    "RecordingStatus",
    "SmsEvent",
    "SmsStatus",
    "StreamEvent",
    "TranscriptionEvent",
    "TranscriptionStatus",
    "UnknownStatus",
    "param",
    "parse_status",
]

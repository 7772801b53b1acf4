"""Receive Twilio's webhooks (calls, messages, recordings, conferences, ...) and run a plain Python
function for each status."""

from .app import ConfigurationError, TwilioEvents
from .channels import HandlerAlreadyRegistered
from .events import (
    AmdEvent,
    AnsweredBy,
    CallEvent,
    CallStatus,
    ConferenceEvent,
    ConferenceEventType,
    Event,
    Media,
    Params,
    RecordingEvent,
    RecordingStatus,
    SmsEvent,
    SmsStatus,
    StreamEvent,
    TranscriptionEvent,
    TranscriptionStatus,
    UnknownStatus,
)
from .kinds import RequestKind
from .listener import Listener
from .security import SharedKey

__version__ = "0.1.0"

__all__ = [
    "AmdEvent",
    "AnsweredBy",
    "CallEvent",
    "CallStatus",
    "ConferenceEvent",
    "ConferenceEventType",
    "ConfigurationError",
    "Event",
    "HandlerAlreadyRegistered",
    "Listener",
    "Media",
    "Params",
    "RecordingEvent",
    "RecordingStatus",
    "RequestKind",
    "SharedKey",
    "SmsEvent",
    "SmsStatus",
    "StreamEvent",
    "TranscriptionEvent",
    "TranscriptionStatus",
    "TwilioEvents",
    "UnknownStatus",
    "__version__",
]

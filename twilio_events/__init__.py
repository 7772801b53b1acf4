"""Receive Twilio's call and message callbacks and run a plain Python function for each status."""

from .app import ConfigurationError, TwilioEvents
from .channels import HandlerAlreadyRegistered
from .events import CallEvent, CallStatus, Media, Params, SmsEvent, SmsStatus
from .kinds import RequestKind
from .listener import Listener
from .security import SharedKey

__version__ = "0.1.0"

__all__ = [
    "CallEvent",
    "CallStatus",
    "ConfigurationError",
    "HandlerAlreadyRegistered",
    "Listener",
    "Media",
    "Params",
    "RequestKind",
    "SharedKey",
    "SmsEvent",
    "SmsStatus",
    "TwilioEvents",
    "__version__",
]

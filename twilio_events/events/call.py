"""Calls: `CallStatus` and `CallEvent`, for status callbacks, voice webhooks and TwiML actions."""

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
    _float,
    _int,
    _Parties,
    _required,
    _rfc2822,
    _specs_of,
    param,
    parse_status,
)


class CallStatus(enum.StrEnum):
    """The values Twilio sends in `CallStatus`."""

    QUEUED = "queued"
    INITIATED = "initiated"
    RINGING = "ringing"
    IN_PROGRESS = "in-progress"
    COMPLETED = "completed"
    BUSY = "busy"
    FAILED = "failed"
    NO_ANSWER = "no-answer"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True for the statuses that end a call."""
        return self in _TERMINAL_CALL_STATUSES


_TERMINAL_CALL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER, CallStatus.CANCELED}
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class _CallLeg(_Parties):
    """The standard parameters of every voice request about one call."""

    call_sid: str = _required("CallSid")
    direction: str | None = param("Direction")
    caller: str | None = param("Caller")
    called: str | None = param("Called")
    forwarded_from: str | None = param("ForwardedFrom")
    caller_name: str | None = param("CallerName")
    parent_call_sid: str | None = param("ParentCallSid")
    call_token: str | None = param("CallToken")
    caller_city: str | None = param("CallerCity")
    caller_state: str | None = param("CallerState")
    caller_zip: str | None = param("CallerZip")
    caller_country: str | None = param("CallerCountry")
    called_city: str | None = param("CalledCity")
    called_state: str | None = param("CalledState")
    called_zip: str | None = param("CalledZip")
    called_country: str | None = param("CalledCountry")


@dataclasses.dataclass(frozen=True, kw_only=True)
class CallEvent(_CallLeg):
    """A voice status callback, voice webhook or `<Gather>`/`<Dial>`/`<Record>`/`<Pay>` action from Twilio."""

    status: CallStatus | UnknownStatus = _NO_STATUS
    timestamp: datetime | None = param("Timestamp", _rfc2822)
    callback_source: str | None = param("CallbackSource")
    sequence_number: int | None = param("SequenceNumber", _int)
    call_duration: int | None = param("CallDuration", _int)
    duration: int | None = param("Duration", _int)
    sip_response_code: int | None = param("SipResponseCode", _int)
    recording_url: str | None = param("RecordingUrl")
    recording_sid: str | None = param("RecordingSid")
    recording_duration: int | None = param("RecordingDuration", _int)
    answered_by: str | None = param("AnsweredBy")
    machine_detection_duration: int | None = param("MachineDetectionDuration", _int)
    digits: str | None = param("Digits")
    finished_on_key: str | None = param("FinishedOnKey")
    speech_result: str | None = param("SpeechResult")
    unstable_speech_result: str | None = param("UnstableSpeechResult")
    """A `<Gather>` partial result's words so far that may still change (`on_gather_partial`)."""
    stable_speech_result: str | None = param("StableSpeechResult")
    """A `<Gather>` partial result's words that will not change any more."""
    confidence: float | None = param("Confidence", _float)
    dial_call_status: str | None = param("DialCallStatus")
    dial_call_sid: str | None = param("DialCallSid")
    dial_call_duration: int | None = param("DialCallDuration", _int)
    dial_bridged: bool | None = param("DialBridged", _bool)
    payment_result: str | None = param("Result")
    payment_token: str | None = param("PaymentToken")
    payment_confirmation_code: str | None = param("PaymentConfirmationCode")
    payment_card_number: str | None = param("PaymentCardNumber")
    payment_card_type: str | None = param("PaymentCardType")
    payment_error: str | None = param("PaymentError")
    profile_id: str | None = param("ProfileId")
    stir_verstat: str | None = param("StirVerstat")
    stir_status: str | None = param("StirStatus")

    @property
    def sid(self) -> str:
        """The call SID (the key of this event's resource)."""
        return self.call_sid

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> CallEvent:
        """Build the event from a callback's form parameters (`extra`: previous_status, idempotency_key)."""
        values = cls._values(params, extra)
        values["status"] = parse_status(CallStatus, params.get("CallStatus", ""))
        return cls._build(values)


_specs_of(CallEvent)

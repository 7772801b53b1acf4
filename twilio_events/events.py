"""Typed, frozen events built from the form parameters of a Twilio callback."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, NamedTuple, Self, TypeVar

from starlette.datastructures import ImmutableMultiDict

from .kinds import RequestKind


class Params(ImmutableMultiDict[str, str]):
    """Every form parameter exactly as received: `get`/`[]` give the first value, `getlist` all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dict = _first_values(self._list)

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> Params:
        """Wrap a freshly parsed list of (name, value) pairs without copying it."""
        params = cls.__new__(cls)
        params._list = pairs
        params._dict = _first_values(pairs)
        return params

    def get(self, key: Any, default: Any = None) -> Any:
        """The first value of `key`, or `default`."""
        return self._dict.get(key, default)

    @property
    def has_repeated_names(self) -> bool:
        """True when some parameter was sent more than once."""
        return len(self._dict) != len(self._list)


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """name -> first value (Starlette's own lookup keeps the last value of a repeated name)."""
    values = dict(pairs)
    if len(values) != len(pairs):
        values = {}
        for name, value in pairs:
            values.setdefault(name, value)
    return values


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


class SmsStatus(enum.StrEnum):
    """The values Twilio sends in `MessageStatus` / `SmsStatus`."""

    ACCEPTED = "accepted"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    RECEIVING = "receiving"
    RECEIVED = "received"
    READ = "read"
    PARTIALLY_DELIVERED = "partially_delivered"
    CANCELED = "canceled"

    @property
    def is_terminal(self) -> bool:
        """True for the statuses after which Twilio sends nothing more for the message."""
        return self in _TERMINAL_SMS_STATUSES


_TERMINAL_CALL_STATUSES = frozenset(
    {CallStatus.COMPLETED, CallStatus.BUSY, CallStatus.FAILED, CallStatus.NO_ANSWER, CallStatus.CANCELED}
)
_TERMINAL_SMS_STATUSES = frozenset(
    {SmsStatus.FAILED, SmsStatus.UNDELIVERED, SmsStatus.RECEIVED, SmsStatus.READ, SmsStatus.CANCELED}
)

StatusT = TypeVar("StatusT", CallStatus, SmsStatus)


def parse_status(enum_type: type[StatusT], value: str) -> StatusT | str:
    """The enum member for `value`, or `value` itself when Twilio sent a status we do not know."""
    try:
        return enum_type(value)
    except ValueError:
        return value


class Media(NamedTuple):
    """One attachment of an inbound message."""

    url: str
    content_type: str | None


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _bool(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


_MONTHS = {
    m: n
    for n, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


def _rfc2822(value: str) -> datetime | None:
    # Twilio's own form, "Fri, 08 Jan 2016 17:18:38 +0000", parsed directly: email.utils is 3x slower
    parts = value.split()
    if len(parts) == 6 and parts[5] == "+0000" and parts[2] in _MONTHS:
        try:
            hour, minute, second = map(int, parts[4].split(":"))
            return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hour, minute, second, tzinfo=UTC)
        except (ValueError, OverflowError):  # OverflowError: a number too big for datetime
            pass
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _yymmddhhmm(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%y%m%d%H%M")
    except ValueError:
        return None


def param(name: str, convert: Callable[[str], Any] | None = None) -> Any:
    """Declare an event attribute filled from the Twilio parameter `name` (None when absent)."""
    return dataclasses.field(default=None, metadata={"param": name, "convert": convert})


def _required(name: str) -> Any:
    """Declare a string attribute Twilio always sends ("" when a request lacks it)."""
    return dataclasses.field(default="", metadata={"param": name, "convert": None, "required": True})


_Spec = tuple[str, str, "Callable[[str], Any] | None"]


def _param_specs(cls: type) -> dict[str, _Spec]:
    """Twilio parameter name -> (attribute, parameter, converter) for the fields declared with `param`."""
    return {
        f.metadata["param"]: (f.name, f.metadata["param"], f.metadata["convert"])
        for f in dataclasses.fields(cls)
        if "param" in f.metadata
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Event:
    """What every Twilio callback has: the account, the parties and the raw parameters."""

    account_sid: str = _required("AccountSid")
    from_: str = _required("From")
    to: str = _required("To")
    api_version: str | None = param("ApiVersion")
    error_code: int | None = param("ErrorCode", _int)
    from_city: str | None = param("FromCity")
    from_state: str | None = param("FromState")
    from_zip: str | None = param("FromZip")
    from_country: str | None = param("FromCountry")
    to_city: str | None = param("ToCity")
    to_state: str | None = param("ToState")
    to_zip: str | None = param("ToZip")
    to_country: str | None = param("ToCountry")
    raw: Params = dataclasses.field(default_factory=Params, compare=False, repr=False)
    previous_status: str | None = None
    """The status last handled for this SID (None for the first), whatever the ordering mode."""
    idempotency_key: str | None = None
    """The key duplicates of this callback share: use it to make a handler's side effects idempotent."""
    kind: RequestKind | None = None
    """What kind of Twilio request this is (status callback, incoming call, `<Gather>` action, ...)."""

    _specs: ClassVar[dict[str, _Spec]] = {}

    @classmethod
    def _build(cls, values: dict[str, Any]) -> Self:
        """The event, with `values` set and every other field at its class-level default.

        Built without the generated __init__, which would assign all ~50 fields where a callback
        carries ~20 (the hot path of every request); `raw` is always among `values`.
        """
        event = object.__new__(cls)
        event.__dict__.update(values)
        return event

    @classmethod
    def _values(cls, params: Params, extra: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"raw": params, **extra}
        specs = cls._specs
        for name, value in params.items():  # the few parameters sent, not every one Twilio documents
            spec = specs.get(name)
            if spec is not None:
                attr, _, convert = spec
                values[attr] = value if convert is None else convert(value)
        return values


@dataclasses.dataclass(frozen=True, kw_only=True)
class CallEvent(_Event):
    """A voice status callback, voice webhook or `<Gather>`/`<Dial>`/`<Record>`/`<Pay>` action from Twilio."""

    status: CallStatus | str = ""
    call_sid: str = _required("CallSid")
    direction: str | None = param("Direction")
    caller: str | None = param("Caller")
    called: str | None = param("Called")
    forwarded_from: str | None = param("ForwardedFrom")
    caller_name: str | None = param("CallerName")
    parent_call_sid: str | None = param("ParentCallSid")
    call_token: str | None = param("CallToken")
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
    caller_city: str | None = param("CallerCity")
    caller_state: str | None = param("CallerState")
    caller_zip: str | None = param("CallerZip")
    caller_country: str | None = param("CallerCountry")
    called_city: str | None = param("CalledCity")
    called_state: str | None = param("CalledState")
    called_zip: str | None = param("CalledZip")
    called_country: str | None = param("CalledCountry")

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class SmsEvent(_Event):
    """A message status callback or an incoming message ("a message comes in") from Twilio."""

    status: SmsStatus | str = ""
    message_sid: str = ""
    sms_sid: str | None = param("SmsSid")
    sms_message_sid: str | None = param("SmsMessageSid")
    messaging_service_sid: str | None = param("MessagingServiceSid")
    body: str | None = param("Body")
    num_media: int | None = param("NumMedia", _int)
    num_segments: int | None = param("NumSegments", _int)
    media: tuple[Media, ...] = ()
    raw_dlr_done_date: datetime | None = param("RawDlrDoneDate", _yymmddhhmm)
    channel_install_sid: str | None = param("ChannelInstallSid")
    channel_status_message: str | None = param("ChannelStatusMessage")
    channel_prefix: str | None = param("ChannelPrefix")
    event_type: str | None = param("EventType")
    opt_out_type: str | None = param("OptOutType")
    profile_name: str | None = param("ProfileName")
    wa_id: str | None = param("WaId")
    forwarded: bool | None = param("Forwarded", _bool)
    frequently_forwarded: bool | None = param("FrequentlyForwarded", _bool)
    button_text: str | None = param("ButtonText")
    button_payload: str | None = param("ButtonPayload")
    latitude: float | None = param("Latitude", _float)
    longitude: float | None = param("Longitude", _float)
    address: str | None = param("Address")
    label: str | None = param("Label")

    @property
    def sid(self) -> str:
        """The message SID (the key of this event's resource)."""
        return self.message_sid

    @property
    def is_inbound(self) -> bool:
        """True for an incoming message, false for a status callback about one we sent."""
        return self.status == SmsStatus.RECEIVED and "MessageStatus" not in self.raw

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> SmsEvent:
        """Build the event from a callback's form parameters (`extra`: previous_status, idempotency_key)."""
        values = cls._values(params, extra)
        status = params.get("MessageStatus") or params.get("SmsStatus", "")
        values["status"] = parse_status(SmsStatus, status)
        values["message_sid"] = params.get("MessageSid") or params.get("SmsSid") or ""
        if "NumMedia" in params or "MediaUrl0" in params:
            values["media"] = _media(params)
        return cls._build(values)


def _media(params: Params) -> tuple[Media, ...]:
    media = []
    index = 0
    while (url := params.get(f"MediaUrl{index}")) is not None:
        media.append(Media(url, params.get(f"MediaContentType{index}")))
        index += 1
    return tuple(media)


CallEvent._specs = _param_specs(CallEvent)
SmsEvent._specs = _param_specs(SmsEvent)

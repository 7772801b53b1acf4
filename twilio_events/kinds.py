"""What kind of Twilio request a form is, and the key that identifies one callback of that kind; no I/O.

Several kinds of Twilio request carry `CallStatus` (status callbacks, the voice webhook, every `<Gather>`,
`<Dial>`, `<Record>` and `<Pay>` action, transcriptions), so a request is recognised by the fields Twilio
documents for each kind, most specific first, never by its status alone.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from .streams import CLOUDEVENT_ID, CLOUDEVENT_TYPE

IDEMPOTENCY_HEADER = b"i-twilio-idempotency-token"
"""The header Twilio sends with the same value on every retry of one request."""


class RequestKind(enum.StrEnum):
    """The kinds of request Twilio sends about a call or a message."""

    CALL_STATUS = "call-status"
    INCOMING_CALL = "incoming-call"
    GATHER = "gather"
    GATHER_PARTIAL = "gather-partial"
    DIAL_ACTION = "dial-action"
    RECORD_ACTION = "record-action"
    PAY_ACTION = "pay-action"
    TRANSCRIPTION = "transcription"
    RECORDING_STATUS = "recording-status"
    CONFERENCE_STATUS = "conference-status"
    AMD = "amd"
    MESSAGE_STATUS = "message-status"
    INCOMING_MESSAGE = "incoming-message"
    STREAM_EVENT = "stream-event"

    @property
    def answered(self) -> bool:
        """True when Twilio executes the answer (TwiML), so the handler must run before it is sent."""
        return self in _ANSWERED

    @property
    def description(self) -> str:
        """The kind in words, for logs and refusals."""
        return _DESCRIPTIONS[self]


_ANSWERED = frozenset(
    {
        RequestKind.INCOMING_CALL,
        RequestKind.GATHER,
        RequestKind.DIAL_ACTION,
        RequestKind.RECORD_ACTION,
        RequestKind.PAY_ACTION,
        RequestKind.INCOMING_MESSAGE,
    }
)

_DESCRIPTIONS = {
    RequestKind.CALL_STATUS: "a call status callback",
    RequestKind.INCOMING_CALL: "a voice webhook (a call comes in, or an outgoing call asks for its TwiML)",
    RequestKind.GATHER: "a <Gather> action callback (Digits / SpeechResult)",
    RequestKind.GATHER_PARTIAL: "a <Gather> partial speech result (partialResultCallback)",
    RequestKind.DIAL_ACTION: "a <Dial> action callback (DialCallStatus)",
    RequestKind.RECORD_ACTION: "a <Record> action callback (RecordingUrl)",
    RequestKind.PAY_ACTION: "a <Pay> action callback (Result and Payment* fields)",
    RequestKind.TRANSCRIPTION: "a transcription callback (TranscriptionSid)",
    RequestKind.RECORDING_STATUS: "a recording status callback (RecordingStatus)",
    RequestKind.CONFERENCE_STATUS: "a conference status callback (ConferenceSid and StatusCallbackEvent)",
    RequestKind.AMD: "an answering machine detection callback (AnsweredBy without CallStatus)",
    RequestKind.MESSAGE_STATUS: "a message status callback",
    RequestKind.INCOMING_MESSAGE: "an incoming message (SmsStatus=received without MessageStatus)",
    RequestKind.STREAM_EVENT: "an Event Streams event of a type no other channel receives",
}

_FINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""The `CallStatus` values that end a call (`CallStatus.is_terminal`: repeated so events can import this)."""


_NOT_STATUSES = frozenset({RequestKind.STREAM_EVENT, RequestKind.GATHER_PARTIAL})
"""Asynchronous requests that report no status of their resource (no ordering, no status mark)."""


class Unrecognised(ValueError):
    """The form is no Twilio request this framework knows; the message lists what it recognises."""


_WEBHOOKS = frozenset(
    {
        RequestKind.INCOMING_CALL,
        RequestKind.GATHER,
        RequestKind.GATHER_PARTIAL,
        RequestKind.DIAL_ACTION,
        RequestKind.RECORD_ACTION,
        RequestKind.PAY_ACTION,
    }
)
"""The voice requests routed by their kind (`on_gather`, ...) rather than by the status they carry."""

_VOICE = ("call", ("CallSid",), ("CallStatus",))
_MESSAGE = ("sms", ("MessageSid", "SmsSid"), ("MessageStatus", "SmsStatus"))
_SHAPES: dict[RequestKind, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    **dict.fromkeys(_WEBHOOKS | {RequestKind.CALL_STATUS}, _VOICE),
    RequestKind.MESSAGE_STATUS: _MESSAGE,
    RequestKind.INCOMING_MESSAGE: _MESSAGE,
    RequestKind.TRANSCRIPTION: ("transcription", ("TranscriptionSid",), ("TranscriptionStatus",)),
    RequestKind.RECORDING_STATUS: ("recording", ("RecordingSid",), ("RecordingStatus",)),
    RequestKind.CONFERENCE_STATUS: ("conference", ("ConferenceSid",), ("StatusCallbackEvent",)),
    RequestKind.AMD: ("amd", ("CallSid",), ("AnsweredBy",)),
    RequestKind.STREAM_EVENT: ("streams", (CLOUDEVENT_ID,), (CLOUDEVENT_TYPE,)),
}
"""Each kind -> (the channel that receives it, the fields of its SID, the fields of its status), first
field sent wins."""


@dataclass(frozen=True, slots=True)
class Recognised:
    """One request, recognised: its kind, the channel and route of its handler, and its key."""

    kind: RequestKind
    channel: str
    """The `app.<channel>` whose handlers receive it: "call", "sms", "recording", "transcription", ..."""
    sid: str
    """The SID of the resource it is about (CallSid, MessageSid, RecordingSid, ConferenceSid, ...)."""
    status: str
    key: str | None
    """The de-duplication key; None for requests whose answer Twilio executes (never de-duplicated)."""
    token: str | None = None
    """Twilio's `I-Twilio-Idempotency-Token`, when it sent one."""

    @property
    def route(self) -> str:
        """What the channel looks the handler up by: the kind for voice webhooks, else the status."""
        return self.kind.value if self.kind in _WEBHOOKS else self.status

    @property
    def label(self) -> str:
        """The status of a status callback or incoming message, else the kind, for logs."""
        return self.route

    @property
    def event_key(self) -> str | None:
        """The `idempotency_key` its event carries: the key, or Twilio's token for an answered request."""
        if self.key is None and self.token:
            return f"token:{self.token}"
        return self.key

    @property
    def is_status(self) -> bool:
        """True for the asynchronous callbacks that ordering and status marks apply to."""
        return not self.kind.answered and self.kind not in _NOT_STATUSES


def recognise(params: Mapping[str, str], token: str | None = None) -> Recognised:
    """Recognise a request from its form parameters (and its idempotency token, when Twilio sent one)."""
    if CLOUDEVENT_TYPE in params:
        return _streamed(params)
    kind = request_kind(params)
    key = None if kind.answered else dedupe_key(kind, params, token)
    return _recognised(kind, params, key, token)


def _recognised(
    kind: RequestKind, params: Mapping[str, str], key: str | None, token: str | None
) -> Recognised:
    channel, sid_fields, status_fields = _SHAPES[kind]
    sid = next((value for name in sid_fields if (value := params.get(name))), "")
    status = next((value for name in status_fields if (value := params.get(name))), "")
    return Recognised(kind, channel, sid, status, key, token)


def _streamed(params: Mapping[str, str]) -> Recognised:
    """An Event Streams event (see streams.py): reported, never answered, and keyed by its CloudEvent id.

    Nothing Twilio streams asks for TwiML, so a voice event that looks like a webhook is a status.
    """
    key = f"cloudevent:{params.get(CLOUDEVENT_ID, '')}"
    try:
        kind = request_kind(params)
    except Unrecognised:
        kind = RequestKind.STREAM_EVENT
    if kind in _WEBHOOKS:
        kind = RequestKind.CALL_STATUS
    return _recognised(kind, params, key, None)


def request_kind(params: Mapping[str, str]) -> RequestKind:
    """The kind of request, from the fields Twilio documents for it; raises Unrecognised."""
    if "TranscriptionSid" in params or "TranscriptionStatus" in params:
        return RequestKind.TRANSCRIPTION
    if "RecordingStatus" in params:
        return RequestKind.RECORDING_STATUS
    if "ConferenceSid" in params and "StatusCallbackEvent" in params:
        return RequestKind.CONFERENCE_STATUS
    call_status = params.get("CallStatus")
    if call_status:
        return _voice_kind(params, call_status)
    if "AnsweredBy" in params and "CallSid" in params:
        return RequestKind.AMD
    if params.get("MessageStatus"):
        return RequestKind.MESSAGE_STATUS
    sms_status = params.get("SmsStatus")
    if sms_status == "received":
        return RequestKind.INCOMING_MESSAGE
    if sms_status:
        return RequestKind.MESSAGE_STATUS
    raise Unrecognised(
        "Bad Request: no status field this service recognises; it receives CallStatus (call status "
        "callbacks, voice webhooks, <Gather>/<Dial>/<Record>/<Pay> actions), MessageStatus or SmsStatus "
        "(message status callbacks, incoming messages), TranscriptionSid or TranscriptionStatus "
        "(transcriptions), RecordingStatus (recording status callbacks), ConferenceSid with "
        "StatusCallbackEvent (conference status callbacks) and AnsweredBy with CallSid (answering machine "
        "detection)"
    )


def _voice_kind(params: Mapping[str, str], call_status: str) -> RequestKind:
    """A request with `CallStatus`: a status callback, an action, or the webhook asking for TwiML."""
    if "UnstableSpeechResult" in params or "StableSpeechResult" in params:
        return RequestKind.GATHER_PARTIAL  # it carries SequenceNumber too, but reports speech, not a status
    if params.get("CallbackSource") or "SequenceNumber" in params:
        return RequestKind.CALL_STATUS  # only status callbacks carry these
    if "DialCallStatus" in params:
        return RequestKind.DIAL_ACTION  # checked before RecordingUrl: <Dial record=...> sends both
    if "RecordingUrl" in params:
        return RequestKind.RECORD_ACTION  # checked before Digits: <Record> sends the key that ended it
    if "Digits" in params or "SpeechResult" in params:
        return RequestKind.GATHER
    if "Result" in params and any(name.startswith("Payment") for name in params):
        return RequestKind.PAY_ACTION
    if call_status in _FINAL_CALL_STATUSES:
        return RequestKind.CALL_STATUS  # Twilio asks no TwiML of a call that ended: an older status callback
    return RequestKind.INCOMING_CALL


def dedupe_key(kind: RequestKind, params: Mapping[str, str], token: str | None) -> str:
    """The key every retry of one callback shares and no other callback has.

    Twilio's idempotency token when sent; else the kind's prefix and every field that can differ between
    two distinct callbacks of that kind.
    """
    if token:
        return f"token:{token}"
    get = params.get
    if kind is RequestKind.CALL_STATUS:
        return f"call:{get('CallSid', '')}:{get('CallStatus', '')}:{get('SequenceNumber', '')}"
    if kind is RequestKind.MESSAGE_STATUS:
        sid = get("MessageSid") or get("SmsSid") or ""
        status = get("MessageStatus") or get("SmsStatus") or ""
        return f"sms:{sid}:{status}:"
    if kind is RequestKind.TRANSCRIPTION:
        return f"transcription:{get('TranscriptionSid', '')}:{get('TranscriptionStatus', '')}"
    if kind is RequestKind.RECORDING_STATUS:
        return f"recording:{get('RecordingSid', '')}:{get('RecordingStatus', '')}"
    if kind is RequestKind.CONFERENCE_STATUS:
        return (
            f"conference:{get('ConferenceSid', '')}:{get('StatusCallbackEvent', '')}:"
            f"{get('CallSid', '')}:{get('SequenceNumber', '')}:{get('Timestamp', '')}"
        )
    if kind is RequestKind.GATHER_PARTIAL:
        return f"gather-partial:{get('CallSid', '')}:{get('SequenceNumber', '')}"
    if kind is RequestKind.AMD:
        return f"amd:{get('CallSid', '')}:{get('AnsweredBy', '')}"
    raise ValueError(f"{kind.description} is never de-duplicated: Twilio executes its answer")

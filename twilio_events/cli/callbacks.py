"""The callbacks `twilio-events simulate` sends: whole lifecycles built from the payload factories that
`twilio_events.testing` uses too, in an order Twilio may really deliver them."""

from __future__ import annotations

import argparse
import mimetypes
import random
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from ..events import CallStatus, SmsStatus
from ..kinds import Recognised, RequestKind, Unrecognised, recognise
from ..payloads import Payload, call_payload, inbound_sms_payload, new_sid, sms_payload

CALL_LIFECYCLES: dict[str, tuple[CallStatus, ...]] = {
    "completed": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.IN_PROGRESS, CallStatus.COMPLETED),
    "busy": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.BUSY),
    "no-answer": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.NO_ANSWER),
    "canceled": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.CANCELED),
    "failed": (CallStatus.INITIATED, CallStatus.FAILED),
}
"""The statuses Twilio reports, in order, for each way a call ends (every progress event subscribed)."""

SMS_LIFECYCLES: dict[str, tuple[SmsStatus, ...]] = {
    "delivered": (SmsStatus.QUEUED, SmsStatus.SENT, SmsStatus.DELIVERED),
    "undelivered": (SmsStatus.QUEUED, SmsStatus.SENT, SmsStatus.UNDELIVERED),
    "failed": (SmsStatus.QUEUED, SmsStatus.FAILED),
}
"""The status callbacks of an outgoing message sent through a Messaging Service, for each ending."""

# Seconds after the call is created at which each status is reported: answered after 5 s of ringing, and
# hung up 42 s later (the factory's CallDuration for a completed call).
_CALL_SECONDS = {
    CallStatus.INITIATED: 0,
    CallStatus.RINGING: 1,
    CallStatus.IN_PROGRESS: 6,
    CallStatus.COMPLETED: 48,
    CallStatus.BUSY: 4,
    CallStatus.NO_ANSWER: 31,
    CallStatus.CANCELED: 9,
    CallStatus.FAILED: 1,
}
_SIP_RESPONSE_CODES = {CallStatus.BUSY: "486", CallStatus.FAILED: "404"}


def call_lifecycle(outcome: str = "completed", **overrides: str | None) -> list[Payload]:
    """A call's status callbacks as Twilio sends them: one CallSid, SequenceNumber 0, 1, ..., and
    Timestamps that advance, ending in `outcome` (completed, busy, no-answer, canceled or failed)."""
    start = datetime.now(UTC)
    shared: dict[str, str | None] = {"CallSid": new_sid("CA"), **overrides}
    payloads = []
    for sequence, status in enumerate(CALL_LIFECYCLES[outcome]):
        step: dict[str, str | None] = {
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(start + timedelta(seconds=_CALL_SECONDS[status])),
        }
        if status in _SIP_RESPONSE_CODES:
            step["SipResponseCode"] = _SIP_RESPONSE_CODES[status]
        payloads.append(call_payload(status, **(step | shared)))
    return payloads


def sms_lifecycle(outcome: str = "delivered", **overrides: str | None) -> list[Payload]:
    """An outgoing message's status callbacks: one MessageSid, queued -> sent -> `outcome` (delivered or
    undelivered), or queued -> failed; failed and undelivered carry an ErrorCode."""
    sid = new_sid("SM")
    shared: dict[str, str | None] = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessagingServiceSid": new_sid("MG"),
        **overrides,
    }
    return [sms_payload(status, **shared) for status in SMS_LIFECYCLES[outcome]]


def inbound_sms(body: str, media_urls: Sequence[str] = (), **overrides: str | None) -> Payload:
    """An incoming message with `body` and one attachment per URL (content type guessed from the URL)."""
    media = [(url, mimetypes.guess_type(urlsplit(url).path)[0] or "image/jpeg") for url in media_urls]
    return inbound_sms_payload(body, media, **overrides)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a callback: parameters, idempotency token (None: no header), and whether it repeats."""

    params: Payload
    token: str | None = None
    repeat: bool = False


def deliveries(
    payloads: Sequence[Payload],
    *,
    rng: random.Random,
    out_of_order: bool = False,
    duplicate: bool = False,
    tokens: bool = True,
) -> list[Delivery]:
    """`payloads` as Twilio may deliver them: shuffled and/or repeated, a repeat with its first's token."""
    order = list(payloads)
    if duplicate and order:
        repeated = [p for p in order if rng.random() < 0.5] or [rng.choice(order)]
        for payload in repeated:
            order.insert(order.index(payload) + 1, payload)
    if out_of_order and len({id(p) for p in order}) > 1:
        original = list(order)
        while order == original:
            rng.shuffle(order)
    token_of = {id(p): str(uuid.uuid4()) if tokens else None for p in payloads}
    seen: set[int] = set()
    result = []
    for payload in order:
        result.append(Delivery(payload, token=token_of[id(payload)], repeat=id(payload) in seen))
        seen.add(id(payload))
    return result


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind `simulate` sends: its sub-command's texts and arguments, which shared options it takes,
    and the payloads it builds (in Twilio's order) from the parsed arguments."""

    name: str
    help: str
    description: str
    examples: str
    build: Callable[[argparse.Namespace], list[dict[str, Any]]]
    """The form payloads it sends (the CloudEvents, for event-streams)."""
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    options: frozenset[str] = field(default_factory=frozenset)
    """The shared option groups it takes besides the target's: "param", "parties", "repeat", "shuffle"."""
    check: Callable[[argparse.Namespace], None] = lambda args: None
    """Raises CommandError for options that do not go together."""


def apply_options(payload: Payload, overrides: Mapping[str, str]) -> Payload:
    """`payload` with the options' parameters: the parties only where the callback names them."""
    for name, value in overrides.items():
        if name not in _PARTIES or name in payload:
            payload[name] = value
    return payload


_PARTIES = frozenset({"From", "To", "Caller", "Called"})


def answers_twiml(params: Mapping[str, str]) -> bool:
    """True for a request whose answer Twilio executes (a voice webhook, an action, an incoming message)."""
    kind = _recognised(params)
    return kind is not None and kind.kind.answered


def describe(delivery: Delivery) -> str:
    """One delivery as its line shows it: kind, status, SID and what sets it apart."""
    params = delivery.params
    found = _recognised(params)
    if found is None:
        text = "callback " + " ".join(f"{name}={value}" for name, value in sorted(params.items())[:3])
    else:
        if found.kind is RequestKind.INCOMING_MESSAGE:
            text = f"inbound sms {found.sid}"
        elif found.kind.answered:
            text = f"voice {found.kind.value:<13} {found.sid}"
        else:
            text = f"{found.channel} {found.status:<11} {found.sid}"
        detail = _DETAILS.get(found.kind)
        text += detail(params) if detail else ""
    return text + (" (repeat)" if delivery.repeat else "")


def _recognised(params: Mapping[str, str]) -> Recognised | None:
    try:
        return recognise(params)
    except Unrecognised:
        return None


def _sequence(params: Mapping[str, str]) -> str:
    return f" seq {params['SequenceNumber']}" if "SequenceNumber" in params else ""


def _inbound(params: Mapping[str, str]) -> str:
    media = f" with {params['NumMedia']} media" if params.get("NumMedia", "0") != "0" else ""
    return f" Body {params.get('Body', '')!r}{media}"


_DETAILS: dict[RequestKind, Callable[[Mapping[str, str]], str]] = {
    RequestKind.CALL_STATUS: _sequence,
    RequestKind.MESSAGE_STATUS: lambda p: f" ErrorCode {p['ErrorCode']}" if "ErrorCode" in p else "",
    RequestKind.INCOMING_MESSAGE: _inbound,
    RequestKind.INCOMING_CALL: lambda p: f" CallStatus {p.get('CallStatus', '')} from {p.get('From', '')}",
    RequestKind.GATHER: lambda p: f" Digits {p['Digits']!r}" if "Digits" in p else "",
    RequestKind.RECORDING_STATUS: lambda p: f" of {p.get('CallSid', '')}",
    RequestKind.TRANSCRIPTION: lambda p: f" {p.get('TranscriptionText', '')!r}",
    RequestKind.CONFERENCE_STATUS: lambda p: (f" {p['CallSid']}" if "CallSid" in p else "") + _sequence(p),
}
"""What sets one callback of a kind apart, after its status and SID."""

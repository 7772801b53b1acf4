"""Realistic Twilio callback payloads and the signature Twilio would send with them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime

from twilio.request_validator import RequestValidator

from .events import CallStatus, SmsStatus

Payload = dict[str, str]

TEST_ACCOUNT_SID = "AC" + "0" * 32
"""The AccountSid the factories use unless told otherwise."""
CALLER = "+14155550100"
CALLEE = "+14155550199"
API_VERSION = "2010-04-01"

_TERMINAL_CALL_DURATION = "42"
_SMS_ERROR_CODES = {SmsStatus.FAILED: "30008", SmsStatus.UNDELIVERED: "30003"}


def new_sid(prefix: str) -> str:
    """A SID shaped like Twilio's: a two-letter prefix and 32 hex digits."""
    return prefix + secrets.token_hex(16)


def sign(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]], auth_token: str) -> str:
    """The `X-Twilio-Signature` Twilio would send for a POST of `params` to `url`."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    multi: dict[str, list[str]] = {}
    for name, value in pairs:
        multi.setdefault(name, []).append(value)
    return str(RequestValidator(auth_token).compute_signature(url, _MultiParams(multi)))


class _MultiParams(dict[str, list[str]]):
    """Gives RequestValidator every value of a repeated parameter, as Twilio signs them all."""

    def getlist(self, name: str) -> list[str]:
        return self[name]


def call_payload(status: CallStatus | str = CallStatus.RINGING, **overrides: str | None) -> Payload:
    """A voice status callback as Twilio sends it; `Name=value` overrides, `Name=None` drops a parameter."""
    status = str(status)
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "CallSid": new_sid("CA"),
        "CallStatus": status,
        "Called": CALLEE,
        "CalledCity": "SAN FRANCISCO",
        "CalledCountry": "US",
        "CalledState": "CA",
        "CalledZip": "94105",
        "Caller": CALLER,
        "CallerCity": "OAKLAND",
        "CallerCountry": "US",
        "CallerState": "CA",
        "CallerZip": "94612",
        "CallbackSource": "call-progress-events",
        "Direction": "outbound-api",
        "From": CALLER,
        "FromCity": "OAKLAND",
        "FromCountry": "US",
        "FromState": "CA",
        "FromZip": "94612",
        "SequenceNumber": "0",
        "Timestamp": format_datetime(datetime.now(UTC)),
        "To": CALLEE,
        "ToCity": "SAN FRANCISCO",
        "ToCountry": "US",
        "ToState": "CA",
        "ToZip": "94105",
    }
    if status in {s.value for s in CallStatus if s.is_terminal}:
        payload["CallDuration"] = _TERMINAL_CALL_DURATION if status == CallStatus.COMPLETED else "0"
        payload["SipResponseCode"] = "200" if status == CallStatus.COMPLETED else "487"
    if status == CallStatus.COMPLETED:
        payload["Duration"] = "1"
    return _apply(payload, overrides)


def sms_payload(status: SmsStatus | str = SmsStatus.DELIVERED, **overrides: str | None) -> Payload:
    """A message status callback as Twilio sends it (both MessageStatus and SmsStatus)."""
    status = str(status)
    sid = new_sid("SM")
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "From": CALLEE,
        "MessageSid": sid,
        "MessageStatus": status,
        "MessagingServiceSid": new_sid("MG"),
        "SmsSid": sid,
        "SmsStatus": status,
        "To": CALLER,
    }
    error_code = _SMS_ERROR_CODES.get(SmsStatus(status)) if status in SmsStatus._value2member_map_ else None
    if error_code:
        payload["ErrorCode"] = error_code
    if status in (SmsStatus.DELIVERED, SmsStatus.UNDELIVERED):
        payload["RawDlrDoneDate"] = datetime.now(UTC).strftime("%y%m%d%H%M")
    return _apply(payload, overrides)


def inbound_sms_payload(
    body: str = "Hello",
    media: Iterable[str | tuple[str, str]] = (),
    **overrides: str | None,
) -> Payload:
    """An incoming message ("a message comes in"): SmsStatus=received, Body, and MediaUrlN per attachment."""
    sid = new_sid("SM" if not media else "MM")
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": CALLER,
        "FromCity": "OAKLAND",
        "FromCountry": "US",
        "FromState": "CA",
        "FromZip": "94612",
        "MessageSid": sid,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": SmsStatus.RECEIVED.value,
        "To": CALLEE,
        "ToCity": "SAN FRANCISCO",
        "ToCountry": "US",
        "ToState": "CA",
        "ToZip": "94105",
    }
    items = [(m, "image/jpeg") if isinstance(m, str) else m for m in media]
    payload["NumMedia"] = str(len(items))
    for index, (url, content_type) in enumerate(items):
        payload[f"MediaUrl{index}"] = url
        payload[f"MediaContentType{index}"] = content_type
    return _apply(payload, overrides)


def _apply(payload: Payload, overrides: Mapping[str, str | None]) -> Payload:
    for name, value in overrides.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload

"""Realistic Twilio callback payloads and the signature Twilio would send with them."""

from __future__ import annotations

import secrets
import uuid
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


def new_idempotency_token() -> str:
    """A fresh `I-Twilio-Idempotency-Token`: Twilio sends one per request and the same on its retries."""
    return str(uuid.uuid4())


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
    return apply_overrides(payload, overrides)


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
    return apply_overrides(payload, overrides)


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
    return apply_overrides(payload, overrides)


def whatsapp_payload(body: str = "Hello", **overrides: str | None) -> Payload:
    """An incoming WhatsApp message: `whatsapp:` addresses, `ProfileName`, `WaId`, `MessageType`; add a
    button reply (`ButtonPayload`, `ButtonText`), a location (`Latitude`, ...) or a referral as overrides."""
    sid = new_sid("SM")
    payload = {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "Body": body,
        "From": f"whatsapp:{CALLER}",
        "MessageSid": sid,
        "MessageType": "text",
        "NumMedia": "0",
        "NumSegments": "1",
        "ProfileName": "Ada",
        "ReferralNumMedia": "0",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "SmsStatus": SmsStatus.RECEIVED.value,
        "To": f"whatsapp:{CALLEE}",
        "WaId": CALLER.lstrip("+"),
    }
    return apply_overrides(payload, overrides)


def incoming_call_payload(
    status: CallStatus | str = CallStatus.RINGING, direction: str = "inbound", **overrides: str | None
) -> Payload:
    """The voice webhook that asks for a call's TwiML ("a call comes in"): no CallbackSource, no
    SequenceNumber; for an outgoing call (`direction="outbound-api"`) it comes with `status="in-progress"`."""
    payload = voice_request(str(status), direction)
    if direction == "inbound":
        payload["CallToken"] = "%7B%22parentCallInfoToken%22%3A%22%22%7D"
        payload["StirVerstat"] = "TN-Validation-Passed-A"
    return apply_overrides(payload, overrides)


def gather_payload(digits: str | None = "1", speech: str | None = None, **overrides: str | None) -> Payload:
    """A `<Gather>` action: the caller's `Digits`, or with `speech` a `SpeechResult` and `Confidence`."""
    payload = voice_request(CallStatus.IN_PROGRESS, "inbound")
    if speech is not None:
        payload.update(SpeechResult=speech, Confidence="0.9212")
        payload["Language"] = "en-US"
    elif digits is not None:
        payload.update(Digits=digits, FinishedOnKey="", msg="Gather End")
    return apply_overrides(payload, overrides)


def dial_action_payload(dial_call_status: str = "completed", **overrides: str | None) -> Payload:
    """A `<Dial>` action, sent when the dialled leg ends: `DialCallStatus`, `DialCallSid`, ..."""
    payload = voice_request(CallStatus.IN_PROGRESS, "inbound")
    answered = dial_call_status == "completed"
    payload.update(
        DialCallStatus=dial_call_status,
        DialCallSid=new_sid("CA"),
        DialCallDuration="37" if answered else "0",
        DialBridged="true" if answered else "false",
    )
    return apply_overrides(payload, overrides)


def record_action_payload(**overrides: str | None) -> Payload:
    """A `<Record>` action: the recording's URL, SID and duration, and the key that ended it (`Digits`)."""
    payload = voice_request(CallStatus.IN_PROGRESS, "inbound")
    recording_sid = overrides.get("RecordingSid") or new_sid("RE")  # its URL names the same SID
    payload.update(
        RecordingUrl=recording_url(recording_sid),
        RecordingSid=recording_sid,
        RecordingDuration="9",
        Digits="#",
    )
    return apply_overrides(payload, overrides)


def pay_action_payload(result: str = "success", **overrides: str | None) -> Payload:
    """A `<Pay>` action after the caller entered a card: `Result` and the Payment* fields."""
    payload = voice_request(CallStatus.IN_PROGRESS, "inbound")
    payload.update(
        Result=result,
        PaymentCardNumber="xxxxxxxxxxxx1111",
        PaymentCardType="visa",
        PaymentCardPostalCode="94105",
        ExpirationDate="1228",
        PaymentConfirmationCode="ch_" + secrets.token_hex(8),
        PaymentToken="tok_" + secrets.token_hex(8),
        ProfileId="",
    )
    return apply_overrides(payload, overrides)


def voice_request(status: str, direction: str) -> Payload:
    """The parameters of every voice webhook: the call, its parties and where they are."""
    inbound = direction == "inbound"
    caller, callee = (CALLER, CALLEE) if inbound else (CALLEE, CALLER)
    return {
        "AccountSid": TEST_ACCOUNT_SID,
        "ApiVersion": API_VERSION,
        "CallSid": new_sid("CA"),
        "CallStatus": str(status),
        "Called": callee,
        "CalledCountry": "US",
        "CalledState": "CA",
        "Caller": caller,
        "CallerCountry": "US",
        "CallerState": "CA",
        "Direction": direction,
        "From": caller,
        "FromCountry": "US",
        "FromState": "CA",
        "To": callee,
        "ToCountry": "US",
        "ToState": "CA",
    }


def recording_url(recording_sid: str) -> str:
    """The REST URL Twilio gives a recording of the test account."""
    return f"https://api.twilio.com/{API_VERSION}/Accounts/{TEST_ACCOUNT_SID}/Recordings/{recording_sid}"


def apply_overrides(payload: Payload, overrides: Mapping[str, str | None]) -> Payload:
    """`payload` with each `Name=value` override set and each `Name=None` removed."""
    for name, value in overrides.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    return payload

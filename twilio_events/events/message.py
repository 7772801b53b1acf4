"""Messages: `SmsStatus` and `SmsEvent`, for status callbacks and incoming SMS, MMS, WhatsApp and RCS."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from .base import (
    _NO_STATUS,
    Params,
    UnknownStatus,
    _bool,
    _float,
    _int,
    _Parties,
    _specs_of,
    _yymmddhhmm,
    param,
    parse_status,
)


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


_TERMINAL_SMS_STATUSES = frozenset(
    {SmsStatus.FAILED, SmsStatus.UNDELIVERED, SmsStatus.RECEIVED, SmsStatus.READ, SmsStatus.CANCELED}
)


class Media(NamedTuple):
    """One attachment of an inbound message."""

    url: str
    content_type: str | None


def _json_object(value: str) -> Mapping[str, Any] | None:
    """A JSON object parameter (`ChannelMetadata`), read-only, or None when it is not one."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return MappingProxyType(parsed) if isinstance(parsed, dict) else None


@dataclasses.dataclass(frozen=True, kw_only=True)
class SmsEvent(_Parties):
    """A message status callback or an incoming message ("a message comes in") from Twilio."""

    status: SmsStatus | UnknownStatus = _NO_STATUS
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
    channel_metadata: Mapping[str, Any] | None = param("ChannelMetadata", _json_object)
    event_type: str | None = param("EventType")
    opt_out_type: str | None = param("OptOutType")
    message_type: str | None = param("MessageType")
    profile_name: str | None = param("ProfileName")
    wa_id: str | None = param("WaId")
    forwarded: bool | None = param("Forwarded", _bool)
    frequently_forwarded: bool | None = param("FrequentlyForwarded", _bool)
    button_text: str | None = param("ButtonText")
    button_payload: str | None = param("ButtonPayload")
    original_replied_message_sender: str | None = param("OriginalRepliedMessageSender")
    original_replied_message_sid: str | None = param("OriginalRepliedMessageSid")
    latitude: float | None = param("Latitude", _float)
    longitude: float | None = param("Longitude", _float)
    address: str | None = param("Address")
    label: str | None = param("Label")
    referral_body: str | None = param("ReferralBody")
    referral_headline: str | None = param("ReferralHeadline")
    referral_source_id: str | None = param("ReferralSourceId")
    referral_source_type: str | None = param("ReferralSourceType")
    referral_source_url: str | None = param("ReferralSourceUrl")
    referral_media_id: str | None = param("ReferralMediaId")
    referral_media_content_type: str | None = param("ReferralMediaContentType")
    referral_media_url: str | None = param("ReferralMediaUrl")
    referral_num_media: int | None = param("ReferralNumMedia", _int)
    referral_ctwa_clid: str | None = param("ReferralCtwaClid")

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


_specs_of(SmsEvent)

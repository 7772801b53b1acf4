"""Event Streams CloudEvents as a webhook sink receives them, and the signature Twilio sends with a batch."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.request_validator import RequestValidator

from .payloads import API_VERSION, CALLEE, CALLER, TEST_ACCOUNT_SID, call_payload, new_sid

CloudEventDict = dict[str, Any]

_VOICE_EVENTS = {
    "initiated": "initiated",
    "ringing": "ringing",
    "in-progress": "answered",
    "completed": "completed",
    "busy": "completed",
    "failed": "completed",
    "no-answer": "completed",
    "canceled": "completed",
}
"""Each CallStatus -> the status-callback event Event Streams reports it as (every end is `completed`)."""


def cloudevent(event_type: str, data: Mapping[str, Any], *, schema: str = "") -> CloudEventDict:
    """One CloudEvent as Event Streams sends it: a fresh id (`EZ...`), the time now, and `data`."""
    return {
        "specversion": "1.0",
        "type": event_type,
        "source": f"/2010-04-01/Accounts/{TEST_ACCOUNT_SID}",
        "id": new_sid("EZ"),
        "dataschema": schema,
        "datacontenttype": "application/json",
        "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "data": dict(data),
    }


def message_status_cloudevent(
    status: str = "delivered", message_sid: str | None = None, **data: Any
) -> CloudEventDict:
    """`com.twilio.messaging.message.<status>` (schema Messaging.MessageStatus): the message's fields in
    camelCase, `messageStatus` in upper case; `name=value` adds or replaces a field of `data`."""
    fields: dict[str, Any] = {
        "messageSid": message_sid or new_sid("SM"),
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "accountSid": TEST_ACCOUNT_SID,
        "eventName": f"com.twilio.messaging.message.{status}",
        "apiVersion": API_VERSION,
        "from": CALLEE,
        "to": CALLER,
        "messageStatus": status.upper(),
        "messagingServiceSid": new_sid("MG"),
        "numberOfSegments": 1,
    }
    if status in ("failed", "undelivered"):
        fields["errorCode"] = 30003 if status == "undelivered" else 30008
    fields.update(data)
    schema = "https://events-schemas.twilio.com/Messaging.MessageStatus/8"
    return cloudevent(f"com.twilio.messaging.message.{status}", fields, schema=schema)


def inbound_message_cloudevent(body: str = "Hello", **data: Any) -> CloudEventDict:
    """`com.twilio.messaging.inbound-message.received`: a message that came in."""
    fields: dict[str, Any] = {
        "messageSid": new_sid("SM"),
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "accountSid": TEST_ACCOUNT_SID,
        "from": CALLER,
        "to": CALLEE,
        "body": body,
        "numMedia": 0,
        "numSegments": 1,
    }
    fields.update(data)
    schema = "https://events-schemas.twilio.com/Messaging.InboundMessageV1/5"
    return cloudevent("com.twilio.messaging.inbound-message.received", fields, schema=schema)


def call_status_cloudevent(status: str = "completed", **parameters: str | None) -> CloudEventDict:
    """`com.twilio.voice.status-callback.call.<event>` (schema Voice.WebhookEvent): the classic status
    callback's form in `data.request.parameters` (`Name=value` overrides a parameter, as `call_payload`)."""
    form = call_payload(status, **parameters)
    data = {
        "sid": form["CallSid"],
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventSid": new_sid("VW"),
        "request": {"url": "https://example.com/status", "method": "POST", "parameters": form},
    }
    event = _VOICE_EVENTS.get(status, "completed")
    schema = "https://events-schemas.twilio.com/Voice.WebhookEvent/2"
    return cloudevent(f"com.twilio.voice.status-callback.call.{event}", data, schema=schema)


def event_streams_body(events: Sequence[CloudEventDict]) -> bytes:
    """A batch as a webhook sink receives it: a JSON array of CloudEvents."""
    return json.dumps(list(events), separators=(",", ":")).encode("utf-8")


def sign_event_streams(url: str, body: bytes, auth_token: str) -> tuple[str, str]:
    """(the URL with `bodySHA256` added, its `X-Twilio-Signature`), as Twilio signs a JSON request."""
    validator = RequestValidator(auth_token)
    digest = validator.compute_hash(body.decode("utf-8"))
    parts = urlsplit(url)
    query = f"{parts.query}&bodySHA256={digest}" if parts.query else f"bodySHA256={digest}"
    signed_url = urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
    return signed_url, str(validator.compute_signature(signed_url, {}))


def new_cloudevent_id() -> str:
    """A CloudEvent id shaped like Event Streams' (`EZ` and 32 hex digits)."""
    return "EZ" + secrets.token_hex(16)

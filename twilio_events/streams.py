"""Twilio Event Streams: a webhook sink's JSON batch of CloudEvents, each turned into the form parameters of
the callback it reports, so that the same channels and handlers receive it; no I/O.

A message status event (`com.twilio.messaging.message.delivered`, ...) carries the message's fields in
`data` (camelCase); a voice status event (`com.twilio.voice.status-callback.call.completed`, ...) carries
the classic callback's form in `data.request.parameters`. Both become the parameters Twilio would have
posted, plus the CloudEvent's own attributes (`CloudEventId`, `CloudEventType`, `CloudEventTime`,
`CloudEventSource`), which is how `kinds.recognise` tells a streamed event from a posted callback. Any
other event type keeps its `data` as JSON (`CloudEventData`) for `app.streams`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLOUDEVENT_ID = "CloudEventId"
CLOUDEVENT_TYPE = "CloudEventType"
CLOUDEVENT_TIME = "CloudEventTime"
CLOUDEVENT_SOURCE = "CloudEventSource"
CLOUDEVENT_DATA = "CloudEventData"

JSON_MEDIA_TYPES = frozenset({"application/json", "application/cloudevents-batch+json"})
"""The Content-Types of an Event Streams webhook sink's requests."""

_MESSAGE_PREFIX = "com.twilio.messaging.message."
_INBOUND_MESSAGE = "com.twilio.messaging.inbound-message.received"
_VOICE_PREFIXES = ("com.twilio.voice.status-callback.", "com.twilio.voice.webhook.status-callback.")
_RENAMED = {"NumberOfSegments": "NumSegments", "StatusCallBackUrl": "StatusCallback"}
"""Event Streams field names whose classic callback parameter is named otherwise."""


class NotCloudEvents(ValueError):
    """The body is not a CloudEvent or a JSON array of them; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class CloudEvent:
    """One event of a batch: its CloudEvents attributes and its `data`."""

    id: str
    type: str
    source: str
    time: str
    data: Mapping[str, Any]

    def params(self) -> list[tuple[str, str]]:
        """The form parameters of the callback this event reports, with the CloudEvent's attributes."""
        own = [
            (CLOUDEVENT_ID, self.id),
            (CLOUDEVENT_TYPE, self.type),
            (CLOUDEVENT_TIME, self.time),
            (CLOUDEVENT_SOURCE, self.source),
        ]
        if self.type.startswith(_MESSAGE_PREFIX) or self.type == _INBOUND_MESSAGE:
            return own + _message_params(self.type, self.data)
        parameters = _request_parameters(self.data)
        if self.type.startswith(_VOICE_PREFIXES) and parameters is not None:
            return own + [(_pascal(name), _text(value)) for name, value in parameters.items()]
        return [*own, (CLOUDEVENT_DATA, json.dumps(self.data, separators=(",", ":")))]


def parse_batch(body: bytes) -> list[CloudEvent]:
    """The CloudEvents of a webhook sink's body (an array, or one event when batching is off)."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise NotCloudEvents(f"the body is not JSON ({exc})") from None
    items = document if isinstance(document, list) else [document]
    if not items:
        raise NotCloudEvents("the batch holds no event")
    return [_cloud_event(item, index) for index, item in enumerate(items)]


def _cloud_event(item: Any, index: int) -> CloudEvent:
    if not isinstance(item, dict):
        raise NotCloudEvents(f"event {index} is not a JSON object")
    missing = [
        name for name in ("specversion", "id", "type", "source") if not isinstance(item.get(name), str)
    ]
    if missing:
        raise NotCloudEvents(f"event {index} lacks the CloudEvents attribute(s) {', '.join(missing)}")
    data = item.get("data")
    return CloudEvent(
        id=item["id"],
        type=item["type"],
        source=item["source"],
        time=str(item.get("time") or ""),
        data=data if isinstance(data, dict) else {},
    )


def _message_params(event_type: str, data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A message event's `data` as the parameters of a message status callback or incoming message."""
    params = [
        (_RENAMED.get(_pascal(name), _pascal(name)), _text(value))
        for name, value in data.items()
        if not isinstance(value, (dict, list)) and value is not None
    ]
    names = {name for name, _ in params}
    sid = str(data.get("messageSid") or data.get("MessageSid") or "")
    if "SmsSid" not in names and sid:
        params.append(("SmsSid", sid))
    if event_type == _INBOUND_MESSAGE:
        return [(name, value) for name, value in params if name != "MessageStatus"] + [
            ("SmsStatus", "received")
        ]
    status = str(data.get("messageStatus") or event_type.removeprefix(_MESSAGE_PREFIX)).lower()
    status = status.replace("-", "_")  # partially-delivered in a type name, partially_delivered as a status
    params = [(name, status if name == "MessageStatus" else value) for name, value in params]
    if "MessageStatus" not in names:
        params.append(("MessageStatus", status))
    return [(name, value) for name, value in params if name != "SmsStatus"] + [("SmsStatus", status)]


def _request_parameters(data: Mapping[str, Any]) -> Mapping[str, Any] | None:
    request = data.get("request")
    parameters = request.get("parameters") if isinstance(request, dict) else None
    return parameters if isinstance(parameters, dict) else None


def _pascal(name: str) -> str:
    """Twilio's parameter name for a field named in camelCase or snake_case (`call_sid` -> `CallSid`)."""
    if "_" in name:
        return "".join(part[:1].upper() + part[1:] for part in name.split("_"))
    return name[:1].upper() + name[1:]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)

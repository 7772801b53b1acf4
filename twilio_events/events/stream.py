"""`StreamEvent`: an Event Streams event of a type that no other channel receives."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .base import Params, _Event, _specs_of, param


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamEvent(_Event):
    """A CloudEvent from an Event Streams webhook sink: its type, source and `data` as Twilio sent them."""

    status: str = ""
    """The CloudEvent's type: what `app.streams.on(...)` registers for."""
    source: str | None = param("CloudEventSource")
    data: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def sid(self) -> str:
        """The CloudEvent's id (a streamed event has no resource SID of its own)."""
        return self.cloudevent_id or ""

    @property
    def type(self) -> str:
        """The CloudEvent's type (`com.twilio.voice.insights.call-summary.complete`, ...)."""
        return self.status

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> StreamEvent:
        """Build the event from a streamed event's parameters (see twilio_events.streams)."""
        values = cls._values(params, extra)
        values["status"] = params.get("CloudEventType", "")
        try:
            data = json.loads(params.get("CloudEventData", "{}"))
        except ValueError:
            data = {}
        values["data"] = MappingProxyType(data if isinstance(data, dict) else {})
        account = values["data"].get("accountSid") or values["data"].get("account_sid")
        if isinstance(account, str):
            values["account_sid"] = account
        return cls._build(values)


_specs_of(StreamEvent)

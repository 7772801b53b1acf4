"""`app.streams`: Event Streams events of the types no other channel receives, by CloudEvent type."""

from __future__ import annotations

import enum

from .channels import ANY, Channel, Registration
from .events import StreamEvent


class StreamEventType(enum.StrEnum):
    """CloudEvent types are open-ended (Twilio adds products), so none is listed: `on(type)` takes any."""


class StreamsChannel(Channel[StreamEvent, StreamEventType]):
    """Streamed events that are not a call's or message's status, keyed by their CloudEvent type."""

    name = "streams"
    event_type = StreamEvent
    status_type = StreamEventType

    def on(self, status: StreamEventType | str) -> Registration[StreamEvent]:
        """Register the decorated function for the CloudEvent type `status` (e.g.
        "com.twilio.voice.insights.call-summary.complete")."""
        key = str(status)
        if not key or key == ANY:
            raise ValueError(f"not a CloudEvent type: {status!r}")
        return Registration(self, [key])

"""What a handler may take and return, for type checkers: each channel's decorators accept its own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol, TypeAlias, TypeVar

from .events import (
    AmdEvent,
    CallEvent,
    ConferenceEvent,
    Event,
    RecordingEvent,
    SmsEvent,
    StreamEvent,
    TranscriptionEvent,
)

if TYPE_CHECKING:
    from starlette.responses import Response


class TwiMLDocument(Protocol):
    """A `twilio.twiml` document (`VoiceResponse`, `MessagingResponse`), as far as its answer needs it."""

    def to_xml(self, xml_declaration: bool = ...) -> str: ...


HandlerResult: TypeAlias = "TwiMLDocument | str | bytes | Response | None"
"""What a handler may return (http/responses.py says what each becomes on the wire)."""

SyncOrAsyncResult: TypeAlias = "HandlerResult | Awaitable[HandlerResult]"
"""What a sync handler returns, or an async one's coroutine."""

CallHandler = TypeVar("CallHandler", bound="Callable[[CallEvent], SyncOrAsyncResult]")
SmsHandler = TypeVar("SmsHandler", bound="Callable[[SmsEvent], SyncOrAsyncResult]")
RecordingHandler = TypeVar("RecordingHandler", bound="Callable[[RecordingEvent], SyncOrAsyncResult]")
TranscriptionHandler = TypeVar(
    "TranscriptionHandler", bound="Callable[[TranscriptionEvent], SyncOrAsyncResult]"
)
ConferenceHandler = TypeVar("ConferenceHandler", bound="Callable[[ConferenceEvent], SyncOrAsyncResult]")
AmdHandler = TypeVar("AmdHandler", bound="Callable[[AmdEvent], SyncOrAsyncResult]")
StreamHandler = TypeVar("StreamHandler", bound="Callable[[StreamEvent], SyncOrAsyncResult]")
"""A handler of one channel's events, whatever else its own type says (names, defaults, async)."""

ErrorHook = TypeVar("ErrorHook", bound="Callable[[Event, Exception], SyncOrAsyncResult]")
"""An `@app.on_error` hook: it sees every channel's events, and what it returns replaces the 500."""

"""A channel maps each Twilio status to the user's handler; calls and messages here; no I/O."""

from __future__ import annotations

import enum
import functools
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar, overload

from starlette.concurrency import run_in_threadpool

from .events import (
    AmdEvent,
    CallEvent,
    CallStatus,
    ConferenceEvent,
    Event,
    RecordingEvent,
    SmsEvent,
    SmsStatus,
    StreamEvent,
    TranscriptionEvent,
)
from .handler_types import (
    AmdHandler,
    CallHandler,
    ConferenceHandler,
    RecordingHandler,
    SmsHandler,
    StreamHandler,
    TranscriptionHandler,
)
from .kinds import RequestKind

EventT = TypeVar("EventT", bound=Event)
StatusT = TypeVar("StatusT", bound=enum.StrEnum)

logger = logging.getLogger("twilio_events")

ANY = "*"
"""The key `on_any` registers under."""


class HandlerAlreadyRegistered(ValueError):
    """Two handlers were registered for the same status of the same channel."""


@dataclass(frozen=True, slots=True)
class Handler:
    """A registered user function, with sync and async normalised to one awaitable call."""

    function: Callable[..., Any]
    call: Callable[..., Awaitable[Any]]
    name: str
    """The function's qualified name, for logs."""

    @classmethod
    def wrap(cls, function: Callable[..., Any]) -> Handler:
        """Sync functions run in the thread pool so they never block the event loop."""
        name = getattr(function, "__qualname__", repr(function))
        if _is_async_callable(function):
            return cls(function, function, name)
        return cls(function, functools.partial(run_in_threadpool, function), name)


def _is_async_callable(obj: Any) -> bool:
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or inspect.iscoroutinefunction(type(obj).__call__)


class Channel(Generic[EventT, StatusT]):
    """The handlers of one kind of callback (calls, messages, recordings, ...), keyed by status.

    A subclass names its event and status types; every status gets an `on_<status>` decorator (declared
    in the class body for type checkers, added here for any the body leaves out). Every decorator is a
    `Registration` of the channel's event type, so type checkers accept only that channel's handlers.
    """

    name: ClassVar[str]
    event_type: ClassVar[type[Any]]
    status_type: ClassVar[type[enum.StrEnum]]
    aliases: ClassVar[Mapping[str, tuple[enum.StrEnum, ...]]] = {}
    """Other names Twilio's documentation gives statuses (`"answered"` for `in-progress`, ...)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for status in cls.status_type:
            attribute = "on_" + status.name.lower()
            if attribute not in cls.__dict__:
                decorator = _StatusDecorator(status)
                setattr(cls, attribute, decorator)
                decorator.__set_name__(cls, attribute)

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def on(self, status: StatusT | str) -> Registration[EventT]:
        """Register the decorated function for `status` (an enum member, Twilio's string, or an alias)."""
        key = str(status)
        if not key or key == ANY:
            raise ValueError(f"not a {self.name} status: {status!r}")
        keys = [str(member) for member in self.aliases.get(key, ())] or [key]
        if key not in self.status_type._value2member_map_ and key not in self.aliases:
            logger.warning(
                "app.%s.on(%r): Twilio documents no such status; the handler runs only if it is ever sent",
                self.name,
                key,
            )
        return Registration(self, keys)

    @property
    def on_any(self) -> Registration[EventT]:
        """Register the fallback for statuses that have no handler of their own."""
        return Registration(self, [ANY])

    def handler_for(self, route: str) -> Handler | None:
        """The handler for a status (else the `on_any` fallback) or a webhook route, else None."""
        handlers = self._handlers
        handler = handlers.get(route)
        if handler is None and route not in _WEBHOOK_ROUTES:  # on_any answers statuses, never TwiML asks
            handler = handlers.get(ANY)
        return handler

    @property
    def handlers(self) -> dict[str, Handler]:
        """A copy of the registrations, status -> handler ("*" is `on_any`)."""
        return dict(self._handlers)

    def _add(self, key: str, function: Callable[..., Any]) -> None:
        if not callable(function):
            raise TypeError(f"a handler must be callable, got {function!r}")
        existing = self._handlers.get(key)
        if existing is not None:
            label = "on_any" if key == ANY else f"{'' if key in _WEBHOOK_ROUTES else 'status '}{key!r}"
            raise HandlerAlreadyRegistered(
                f"app.{self.name} already has a handler for {label}: {existing.name}; "
                f"cannot also register {Handler.wrap(function).name}"
            )
        self._handlers[key] = Handler.wrap(function)


class Registration(Generic[EventT]):
    """What a channel's decorators give: called with a handler, it registers it and returns it unchanged.

    For type checkers, the handler must take the channel's event (or a wider type) and return a
    `handler_types.HandlerResult`, or be async and return one; it keeps its own type. There is one overload
    per event type, chosen by the channel's event (a type variable's bound cannot depend on another).
    """

    __slots__ = ("_channel", "_keys")

    def __init__(self, channel: Channel[EventT, Any], keys: list[str]) -> None:
        self._channel = channel
        self._keys = keys

    @overload
    def __call__(self: Registration[CallEvent], function: CallHandler) -> CallHandler: ...
    @overload
    def __call__(self: Registration[SmsEvent], function: SmsHandler) -> SmsHandler: ...
    @overload
    def __call__(self: Registration[RecordingEvent], function: RecordingHandler) -> RecordingHandler: ...
    @overload
    def __call__(
        self: Registration[TranscriptionEvent], function: TranscriptionHandler
    ) -> TranscriptionHandler: ...
    @overload
    def __call__(self: Registration[ConferenceEvent], function: ConferenceHandler) -> ConferenceHandler: ...
    @overload
    def __call__(self: Registration[AmdEvent], function: AmdHandler) -> AmdHandler: ...
    @overload
    def __call__(self: Registration[StreamEvent], function: StreamHandler) -> StreamHandler: ...
    def __call__(self, function: Callable[..., Any]) -> Callable[..., Any]:
        channel, keys = self._channel, self._keys
        taken = [one for one in keys if one in channel._handlers]
        for one in taken + [one for one in keys if one not in taken]:  # refuse before adding any
            channel._add(one, function)
        return function


class _WebhookDecorator:
    """`channel.on_incoming`, `on_gather`, ...: registers the handler of one kind of voice webhook."""

    def __init__(self, kind: RequestKind) -> None:
        self.kind = kind

    def __set_name__(self, owner: type, name: str) -> None:
        self.__doc__ = f"Register the decorated function for {self.kind.description}; it returns TwiML."
        WEBHOOK_DECORATORS[self.kind] = name
        _WEBHOOK_ROUTES.add(self.kind.value)

    @overload
    def __get__(self, channel: None, owner: type) -> _WebhookDecorator: ...
    @overload
    def __get__(self, channel: Channel[CallEvent, Any], owner: type) -> Registration[CallEvent]: ...
    def __get__(
        self, channel: Channel[CallEvent, Any] | None, owner: type
    ) -> _WebhookDecorator | Registration[CallEvent]:
        if channel is None:
            return self
        return Registration(channel, [self.kind.value])


WEBHOOK_DECORATORS: dict[RequestKind, str] = {}
"""Each voice webhook kind -> the name of the decorator that registers its handler."""
_WEBHOOK_ROUTES: set[str] = set()


class _StatusDecorator:
    """`channel.on_<status>`: registers a handler for one fixed status (a `Registration` of its event)."""

    def __init__(self, status: enum.StrEnum) -> None:
        self.status = status

    def __set_name__(self, owner: type, name: str) -> None:
        self.__doc__ = f"Register the decorated function for status {self.status.value!r}."

    @overload
    def __get__(self, channel: None, owner: type) -> _StatusDecorator: ...
    @overload
    def __get__(self, channel: Channel[EventT, Any], owner: type) -> Registration[EventT]: ...
    def __get__(
        self, channel: Channel[EventT, Any] | None, owner: type
    ) -> _StatusDecorator | Registration[EventT]:
        if channel is None:
            return self
        return channel.on(self.status)


class CallChannel(Channel[CallEvent, CallStatus]):
    """Call status callbacks, one decorator per `CallStatus`, and the voice webhooks that answer TwiML."""

    name = "call"
    event_type = CallEvent
    status_type = CallStatus
    aliases: ClassVar[Mapping[str, tuple[enum.StrEnum, ...]]] = {
        "answered": (CallStatus.IN_PROGRESS,)  # the StatusCallbackEvent that reports in-progress
    }

    on_queued = _StatusDecorator(CallStatus.QUEUED)
    on_initiated = _StatusDecorator(CallStatus.INITIATED)
    on_ringing = _StatusDecorator(CallStatus.RINGING)
    on_in_progress = _StatusDecorator(CallStatus.IN_PROGRESS)
    on_completed = _StatusDecorator(CallStatus.COMPLETED)
    on_busy = _StatusDecorator(CallStatus.BUSY)
    on_failed = _StatusDecorator(CallStatus.FAILED)
    on_no_answer = _StatusDecorator(CallStatus.NO_ANSWER)
    on_canceled = _StatusDecorator(CallStatus.CANCELED)

    on_incoming = _WebhookDecorator(RequestKind.INCOMING_CALL)
    on_gather = _WebhookDecorator(RequestKind.GATHER)
    on_gather_partial = _WebhookDecorator(RequestKind.GATHER_PARTIAL)
    on_dial_action = _WebhookDecorator(RequestKind.DIAL_ACTION)
    on_record_action = _WebhookDecorator(RequestKind.RECORD_ACTION)
    on_pay_action = _WebhookDecorator(RequestKind.PAY_ACTION)


class SmsChannel(Channel[SmsEvent, SmsStatus]):
    """Message status callbacks and incoming messages, one decorator per message status."""

    name = "sms"
    event_type = SmsEvent
    status_type = SmsStatus

    on_accepted = _StatusDecorator(SmsStatus.ACCEPTED)
    on_scheduled = _StatusDecorator(SmsStatus.SCHEDULED)
    on_queued = _StatusDecorator(SmsStatus.QUEUED)
    on_sending = _StatusDecorator(SmsStatus.SENDING)
    on_sent = _StatusDecorator(SmsStatus.SENT)
    on_failed = _StatusDecorator(SmsStatus.FAILED)
    on_delivered = _StatusDecorator(SmsStatus.DELIVERED)
    on_undelivered = _StatusDecorator(SmsStatus.UNDELIVERED)
    on_receiving = _StatusDecorator(SmsStatus.RECEIVING)
    on_received = _StatusDecorator(SmsStatus.RECEIVED)
    on_read = _StatusDecorator(SmsStatus.READ)
    on_partially_delivered = _StatusDecorator(SmsStatus.PARTIALLY_DELIVERED)
    on_canceled = _StatusDecorator(SmsStatus.CANCELED)

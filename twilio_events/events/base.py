"""What every event shares: the raw parameters, typed `param(...)` fields and their converters."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Self, TypeVar

from starlette.datastructures import ImmutableMultiDict

from ..kinds import RequestKind


class Params(ImmutableMultiDict[str, str]):
    """Every form parameter exactly as received: `get`/`[]` give the first value, `getlist` all."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._dict = _first_values(self._list)

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> Params:
        """Wrap a freshly parsed list of (name, value) pairs without copying it."""
        params = cls.__new__(cls)
        params._list = pairs
        params._dict = _first_values(pairs)
        return params

    def get(self, key: Any, default: Any = None) -> Any:
        """The first value of `key`, or `default`."""
        return self._dict.get(key, default)

    @property
    def has_repeated_names(self) -> bool:
        """True when some parameter was sent more than once."""
        return len(self._dict) != len(self._list)


def _first_values(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """name -> first value (Starlette's own lookup keeps the last value of a repeated name)."""
    values = dict(pairs)
    if len(values) != len(pairs):
        values = {}
        for name, value in pairs:
            values.setdefault(name, value)
    return values


StatusT = TypeVar("StatusT", bound=enum.StrEnum)


class UnknownStatus(str):
    """A status Twilio sent that no status enum lists: equal to Twilio's string, with the enums' properties.

    `is_terminal` is False: nothing is known to end with it, so a handler keeps its state for the callbacks
    that may follow, as monotonic ordering does (it never treats such a status as final). `is_machine`
    follows Twilio's naming, as `AnsweredBy.is_machine` does: a `machine_...` value is a machine.
    """

    __slots__ = ()

    @property
    def value(self) -> str:
        """Twilio's string, as an enum member's `value` is."""
        return str(self)

    @property
    def is_terminal(self) -> bool:
        """False: a status nobody documented is not known to end anything."""
        return False

    @property
    def is_machine(self) -> bool:
        """True for a `machine_...` answering machine detection result, by Twilio's naming."""
        return self.startswith("machine_")

    def __repr__(self) -> str:
        return f"UnknownStatus({str(self)!r})"


_NO_STATUS = UnknownStatus("")
"""The status of an event built without one (Twilio always sends one)."""


def parse_status(enum_type: type[StatusT], value: str) -> StatusT | UnknownStatus:
    """The enum member for `value`, or an `UnknownStatus` when Twilio sent a status we do not know."""
    try:
        return enum_type(value)
    except ValueError:
        return UnknownStatus(value)


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _bool(value: str) -> bool | None:
    lowered = value.lower()
    if lowered in ("true", "1"):
        return True
    if lowered in ("false", "0"):
        return False
    return None


_MONTHS = {
    m: n
    for n, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}


def _rfc2822(value: str) -> datetime | None:
    # Twilio's own form, "Fri, 08 Jan 2016 17:18:38 +0000", parsed directly: email.utils is 3x slower
    parts = value.split()
    if len(parts) == 6 and parts[5] == "+0000" and parts[2] in _MONTHS:
        try:
            hour, minute, second = map(int, parts[4].split(":"))
            return datetime(int(parts[3]), _MONTHS[parts[2]], int(parts[1]), hour, minute, second, tzinfo=UTC)
        except (ValueError, OverflowError):  # OverflowError: a number too big for datetime
            pass
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _iso8601(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _yymmddhhmm(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%y%m%d%H%M")
    except ValueError:
        return None


def param(name: str, convert: Callable[[str], Any] | None = None) -> Any:
    """Declare an event attribute filled from the Twilio parameter `name` (None when absent)."""
    return dataclasses.field(default=None, metadata={"param": name, "convert": convert})


def _required(name: str) -> Any:
    """Declare a string attribute Twilio always sends ("" when a request lacks it)."""
    return dataclasses.field(default="", metadata={"param": name, "convert": None, "required": True})


_Spec = tuple[str, str, "Callable[[str], Any] | None"]


def _param_specs(cls: type) -> dict[str, _Spec]:
    """Twilio parameter name -> (attribute, parameter, converter) for the fields declared with `param`."""
    return {
        f.metadata["param"]: (f.name, f.metadata["param"], f.metadata["convert"])
        for f in dataclasses.fields(cls)
        if "param" in f.metadata
    }


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Event:
    """What every Twilio callback has: the account and the raw parameters."""

    account_sid: str = _required("AccountSid")
    api_version: str | None = param("ApiVersion")
    error_code: int | None = param("ErrorCode", _int)
    raw: Params = dataclasses.field(default_factory=Params, compare=False, repr=False)
    previous_status: str | None = None
    """The status last handled for this SID (None for the first), whatever the ordering mode."""
    idempotency_key: str | None = None
    """The key duplicates of this callback share: use it to make a handler's side effects idempotent."""
    kind: RequestKind | None = None
    """What kind of Twilio request this is (status callback, incoming call, `<Gather>` action, ...)."""
    cloudevent_id: str | None = param("CloudEventId")
    """The CloudEvent's id when this came through Event Streams (None for a callback Twilio posted)."""
    cloudevent_type: str | None = param("CloudEventType")
    """The CloudEvent's type (`com.twilio.messaging.message.delivered`, ...) when streamed."""
    cloudevent_time: datetime | None = param("CloudEventTime", _iso8601)
    """When Twilio says the streamed event happened."""
    recovered: bool = dataclasses.field(
        default=False, metadata={"param": "RecoveredFrom", "convert": lambda value: True}
    )
    """True for a status Twilio's callbacks never delivered, recovered from the REST API (reconciliation)."""

    _specs: ClassVar[dict[str, _Spec]] = {}

    @classmethod
    def _build(cls, values: dict[str, Any]) -> Self:
        """The event, with `values` set and every other field at its class-level default.

        Built without the generated __init__, which would assign all ~50 fields where a callback
        carries ~20 (the hot path of every request); `raw` is always among `values`.
        """
        event = object.__new__(cls)
        event.__dict__.update(values)
        return event

    @classmethod
    def _values(cls, params: Params, extra: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {"raw": params, **extra}
        specs = cls._specs
        for name, value in params.items():  # the few parameters sent, not every one Twilio documents
            spec = specs.get(name)
            if spec is not None:
                attr, _, convert = spec
                values[attr] = value if convert is None else convert(value)
        return values


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Parties(_Event):
    """A callback about a call or a message: who it is from and to, and where they are."""

    from_: str = _required("From")
    to: str = _required("To")
    from_city: str | None = param("FromCity")
    from_state: str | None = param("FromState")
    from_zip: str | None = param("FromZip")
    from_country: str | None = param("FromCountry")
    to_city: str | None = param("ToCity")
    to_state: str | None = param("ToState")
    to_zip: str | None = param("ToZip")
    to_country: str | None = param("ToCountry")


def _specs_of(cls: type[_Event]) -> None:
    """Index the `param(...)` fields of an event class by Twilio parameter name (once, at import)."""
    cls._specs = _param_specs(cls)

"""Asynchronous answering machine detection: `AnsweredBy` and `AmdEvent`."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from .base import _NO_STATUS, Params, UnknownStatus, _Event, _int, _required, _specs_of, param, parse_status


class AnsweredBy(enum.StrEnum):
    """The values Twilio sends in `AnsweredBy`."""

    HUMAN = "human"
    MACHINE_START = "machine_start"
    MACHINE_END_BEEP = "machine_end_beep"
    MACHINE_END_SILENCE = "machine_end_silence"
    MACHINE_END_OTHER = "machine_end_other"
    FAX = "fax"
    UNKNOWN = "unknown"

    @property
    def is_machine(self) -> bool:
        """True for an answering machine (at its greeting's start, or after its message ended)."""
        return self.value.startswith("machine_")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AmdEvent(_Event):
    """An answering machine detection result (`AsyncAmdStatusCallback`) from Twilio."""

    status: AnsweredBy | UnknownStatus = _NO_STATUS
    call_sid: str = _required("CallSid")
    machine_detection_duration: int | None = param("MachineDetectionDuration", _int)
    """Milliseconds the detection took."""

    @property
    def sid(self) -> str:
        """The call SID (the call this result is about)."""
        return self.call_sid

    @property
    def answered_by(self) -> AnsweredBy | UnknownStatus:
        """Who answered: the status under Twilio's own name."""
        return self.status

    @classmethod
    def from_params(cls, params: Params, **extra: Any) -> AmdEvent:
        """Build the event from a callback's form parameters (`extra`: previous_status, idempotency_key)."""
        values = cls._values(params, extra)
        values["status"] = parse_status(AnsweredBy, params.get("AnsweredBy", ""))
        return cls._build(values)


_specs_of(AmdEvent)

"""What delivery made of one callback, told to whoever listens in the request's context (the console)."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass

StoredObserver = Callable[[str, str, str], None]
"""Told (key, outcome, handler) of what a worker made of a stored event: handled, retrying, dead letter."""


@dataclass(slots=True)
class Outcome:
    """handled, duplicate, out-of-order, failed, queued or acknowledged (no handler); the handler's name."""

    name: str = ""
    handler: str = ""


_listening: ContextVar[Outcome | None] = ContextVar("twilio_events_outcome", default=None)


def listen() -> Outcome:
    """An outcome that delivery fills in for the rest of this request's context."""
    outcome = Outcome()
    _listening.set(outcome)
    return outcome


def note(name: str, handler: str = "") -> None:
    """Tell the listener, if any, what became of the callback (nothing happens when none listens)."""
    outcome = _listening.get()
    if outcome is not None:
        outcome.name = name
        outcome.handler = handler or outcome.handler

"""The hooks delivery and the HTTP edge call: `NoTelemetry` does nothing, `Telemetry` feeds the metrics
and the spans that are on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .metrics import PrometheusMetrics, Sample
    from .tracing import Tracing

TRACE_PARAM = "twilio_events.traceparent"
"""The stored parameter that carries the accepting request's span context (see tracing.py)."""


class _Null:
    """A context manager that does nothing, shared by every no-op hook."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


NULL: AbstractContextManager[None] = _Null()


class NoTelemetry:
    """Metrics and tracing off: every hook returns at once."""

    serves_metrics = False

    def request(self, method: str, path: str, listener: str) -> AbstractContextManager[Any]:
        """The span of one callback request."""
        return NULL

    def step(self, name: str) -> AbstractContextManager[Any]:
        """A child span: "verify", "parse", "handler"."""
        return NULL

    def recognised(self, channel: str, status: str, sid: str, kind: str) -> None:
        """What the request turned out to be."""

    def signed(self, credential: str) -> None:
        """The credential that signed an accepted request."""

    def refused(self, code: int, cause: str) -> None:
        """A request refused before any handler ran."""

    def answered(self, status_code: int) -> None:
        """The status code of a callback's answer."""

    def outcome(self, channel: str, status: str, outcome: str) -> None:
        """What became of a recognised callback: handled, unhandled, duplicate, out_of_order, failed,
        queued (durable), unavailable (the store did not answer)."""

    def handled(self, channel: str, handler: str, seconds: float, timestamp: str | None) -> None:
        """A handler ran for `seconds`; `timestamp` is the callback's Twilio Timestamp, if any."""

    def retried(self, channel: str, *, dead: bool) -> None:
        """A durable event failed: retried later, or moved to the dead letters."""

    def recovered(self, channel: str) -> None:
        """Reconciliation delivered a status recovered from the REST API."""

    def carry(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The parameters to store for an accepted event (with the span context when tracing)."""
        return pairs

    def worker(
        self, channel: str, key: str, pairs: list[tuple[str, str]], attempt: int
    ) -> AbstractContextManager[list[tuple[str, str]]]:
        """A worker's run of a stored event: its span; yields the parameters without the carried context."""
        return contextlib.nullcontext(_without_context(pairs))

    async def scrape(self, sample: Sample) -> bytes:
        """The metrics exposition text (only with metrics on)."""
        raise LookupError("metrics are off")


class Telemetry(NoTelemetry):
    """Metrics, tracing or both: each hook updates the metrics and the current span."""

    def __init__(self, metrics: PrometheusMetrics | None, tracing: Tracing | None) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.serves_metrics = metrics is not None

    def request(self, method: str, path: str, listener: str) -> AbstractContextManager[Any]:
        return self.tracing.request(method, path, listener) if self.tracing else NULL

    def step(self, name: str) -> AbstractContextManager[Any]:
        return self.tracing.step(name) if self.tracing else NULL

    def recognised(self, channel: str, status: str, sid: str, kind: str) -> None:
        if self.tracing:
            self.tracing.annotate(channel=channel, status=status, sid=sid, kind=kind)

    def signed(self, credential: str) -> None:
        if self.metrics:
            self.metrics.signature(credential)
        if self.tracing:
            self.tracing.annotate(signed_by=credential)

    def refused(self, code: int, cause: str) -> None:
        if self.metrics:
            self.metrics.refusal(code, cause)
        if self.tracing:
            self.tracing.annotate(outcome="refused", refused=cause)

    def answered(self, status_code: int) -> None:
        if self.tracing:
            self.tracing.answered(status_code)

    def outcome(self, channel: str, status: str, outcome: str) -> None:
        if self.metrics:
            self.metrics.callback(channel, status, outcome)
        if self.tracing:
            self.tracing.annotate(outcome=outcome)

    def handled(self, channel: str, handler: str, seconds: float, timestamp: str | None) -> None:
        if self.metrics:
            self.metrics.handled(channel, handler, seconds, timestamp)
        if self.tracing:
            self.tracing.annotate(handler=handler)

    def retried(self, channel: str, *, dead: bool) -> None:
        if self.metrics:
            self.metrics.retried(channel, dead=dead)

    def recovered(self, channel: str) -> None:
        if self.metrics:
            self.metrics.recovery(channel)

    def carry(self, pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        parent = self.tracing.traceparent() if self.tracing else None
        return [*pairs, (TRACE_PARAM, parent)] if parent else pairs

    @contextlib.contextmanager
    def worker(
        self, channel: str, key: str, pairs: list[tuple[str, str]], attempt: int
    ) -> Iterator[list[tuple[str, str]]]:
        carried = pairs[-1][1] if pairs and pairs[-1][0] == TRACE_PARAM else None
        if self.tracing is None:
            yield _without_context(pairs)
            return
        with self.tracing.worker(channel, key, carried, attempt):
            yield _without_context(pairs)

    async def scrape(self, sample: Sample) -> bytes:
        assert self.metrics is not None
        return self.metrics.scrape(sample)


def _without_context(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The stored parameters without the carried span context (always appended last)."""
    return pairs[:-1] if pairs and pairs[-1][0] == TRACE_PARAM else pairs


NO_TELEMETRY = NoTelemetry()

"""OpenTelemetry spans through opentelemetry-api (imported only when tracing is on).

One SERVER span per callback request, with child spans for the signature check ("verify"), reading and
recognising the form ("parse") and the handler. In durable mode the request's span context travels with
the stored event as one extra parameter (hooks.TRACE_PARAM, a W3C `traceparent`), appended to the stored
parameters and removed before the event is built; the worker's span links to it.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

PREFIX = "twilio_events."

_propagator = TraceContextTextMapPropagator()


class Tracing:
    """Starts the spans; the user's SDK (or none: then they are non-recording) decides what is kept."""

    def __init__(self) -> None:
        self.tracer = trace.get_tracer("twilio_events", _version())

    def request(self, method: str, path: str, listener: str) -> AbstractContextManager[Any]:
        """The span of one callback request, current for the block."""
        attributes = {"http.request.method": method, "url.path": path, PREFIX + "listener": listener}
        return self.tracer.start_as_current_span(
            "twilio_events callback", kind=SpanKind.SERVER, attributes=attributes
        )

    def step(self, name: str) -> AbstractContextManager[Any]:
        """A child span of the current one: "verify", "parse", "handler"."""
        return self.tracer.start_as_current_span(PREFIX + name)

    def annotate(self, **attributes: str | int) -> None:
        """Attributes of the current span, each named `twilio_events.<name>`."""
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attributes({PREFIX + name: value for name, value in attributes.items() if value != ""})

    def answered(self, status_code: int) -> None:
        """The answer's status code on the current span; an error status for 5xx."""
        span = trace.get_current_span()
        span.set_attribute("http.response.status_code", status_code)
        if status_code >= 500:
            span.set_status(Status(StatusCode.ERROR))

    def traceparent(self) -> str | None:
        """The current span context as a W3C `traceparent`, or None without one."""
        carrier: dict[str, str] = {}
        _propagator.inject(carrier)
        return carrier.get("traceparent")

    @contextmanager
    def worker(self, channel: str, key: str, carried: str | None, attempt: int) -> Iterator[None]:
        """A worker's span for one stored event, linked to the span of the request that accepted it."""
        links: Sequence[Link] = ()
        if carried:
            context = trace.get_current_span(_propagator.extract({"traceparent": carried})).get_span_context()
            if context.is_valid:
                links = (Link(context, {PREFIX + "link": "accepted"}),)
        attributes: dict[str, str | int] = {
            PREFIX + "channel": channel,
            PREFIX + "key": key,
            PREFIX + "attempt": attempt,
        }
        with self.tracer.start_as_current_span(
            "twilio_events worker", kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ):
            yield


def _version() -> str | None:
    """The installed package's version, for the tracer's instrumentation scope."""
    try:
        return importlib.metadata.version("twilio-events")
    except importlib.metadata.PackageNotFoundError:
        return None

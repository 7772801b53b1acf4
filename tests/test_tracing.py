"""OpenTelemetry spans, kept by the SDK's in-memory exporter: one per callback with its steps, and the
durable worker's span linked to the request that accepted the event."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from twilio_events import CallEvent, CallStatus, TwilioEvents
from twilio_events.observability import TRACE_PARAM
from twilio_events.testing import TwilioTestClient, call_payload

from .conftest import TOKEN, wait_for

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _sdk() -> None:
    """The SDK a user would install, once per process (OpenTelemetry allows one global provider)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [span for span in exporter.get_finished_spans() if span.name == name]


def test_one_span_per_callback_with_its_steps(spans: InMemorySpanExporter) -> None:
    app = TwilioEvents(auth_token=TOKEN, tracing=True)

    @app.call.on_ringing
    async def ringing(event: CallEvent) -> None:
        return None

    payload = call_payload(CallStatus.RINGING)
    assert TwilioTestClient(app).callback(payload).status_code == 200

    (request,) = named(spans, "twilio_events callback")
    assert request.kind == SpanKind.SERVER
    attributes = dict(request.attributes or {})
    assert attributes["twilio_events.channel"] == "call"
    assert attributes["twilio_events.status"] == "ringing"
    assert attributes["twilio_events.sid"] == payload["CallSid"]
    assert attributes["twilio_events.kind"] == "call-status"
    assert attributes["twilio_events.listener"] == "asgi"
    assert attributes["twilio_events.outcome"] == "handled"
    assert attributes["twilio_events.handler"].endswith("ringing")
    assert attributes["http.response.status_code"] == 200
    for step in ("parse", "verify", "handler"):
        (child,) = named(spans, f"twilio_events.{step}")
        assert child.parent is not None and child.parent.span_id == request.context.span_id
        assert child.context.trace_id == request.context.trace_id
    (verify,) = named(spans, "twilio_events.verify")
    assert dict(verify.attributes or {})["twilio_events.signed_by"] == "primary auth token"


def test_a_refusal_is_on_its_span(spans: InMemorySpanExporter) -> None:
    app = TwilioEvents(auth_token=TOKEN, tracing=True)
    assert TwilioTestClient(app).callback(call_payload(), signature="forged").status_code == 403
    (request,) = named(spans, "twilio_events callback")
    attributes = dict(request.attributes or {})
    assert attributes["twilio_events.outcome"] == "refused"
    assert attributes["twilio_events.refused"] == "signature"
    assert attributes["http.response.status_code"] == 403
    assert not named(spans, "twilio_events.handler")


def test_a_durable_run_links_to_the_request_that_accepted_it(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    app = TwilioEvents(
        auth_token=TOKEN, tracing=True, delivery="durable", store=f"sqlite:///{tmp_path / 'events.db'}"
    )
    seen: list[CallEvent] = []

    @app.call.on_completed
    def completed(event: CallEvent) -> None:
        seen.append(event)

    with TwilioTestClient(app) as client:
        assert client.callback(call_payload(CallStatus.COMPLETED)).status_code == 200
        wait_for(lambda: bool(named(spans, "twilio_events worker")), "the worker's span")

    (request,) = named(spans, "twilio_events callback")
    (worker,) = named(spans, "twilio_events worker")
    assert dict(request.attributes or {})["twilio_events.outcome"] == "queued"
    assert worker.kind == SpanKind.CONSUMER
    assert worker.context.trace_id != request.context.trace_id  # a trace of its own, linked
    (link,) = worker.links
    assert link.context.trace_id == request.context.trace_id
    assert link.context.span_id == request.context.span_id
    (handler,) = named(spans, "twilio_events.handler")
    assert handler.parent is not None and handler.parent.span_id == worker.context.span_id
    assert dict(worker.attributes or {})["twilio_events.outcome"] == "handled"
    # the carried context never reaches the handler's event
    assert [event.raw.get(TRACE_PARAM) for event in seen] == [None]


def test_tracing_off_makes_no_span(spans: InMemorySpanExporter) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    assert TwilioTestClient(app).callback(call_payload()).status_code == 200
    assert spans.get_finished_spans() == ()


def test_tracing_without_opentelemetry_is_a_warning_and_no_spans(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "twilio_events.observability.tracing", raising=False)
    app = TwilioEvents(auth_token=TOKEN, tracing=True)
    assert "pip install 'twilio-events[otel]'" in caplog.text
    assert TwilioTestClient(app).callback(call_payload()).status_code == 200

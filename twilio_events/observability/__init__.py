"""Metrics, tracing and log output: optional, and nothing on the hot path when off."""

from __future__ import annotations

import logging
import os

from .hooks import NO_TELEMETRY, TRACE_PARAM, NoTelemetry, Telemetry

__all__ = [
    "METRICS_ENV",
    "NO_TELEMETRY",
    "TRACE_PARAM",
    "TRACING_ENV",
    "NoTelemetry",
    "Telemetry",
    "telemetry_for",
]

METRICS_ENV = "TWILIO_EVENTS_METRICS"
TRACING_ENV = "TWILIO_EVENTS_TRACING"

logger = logging.getLogger("twilio_events")


class MissingExtra(ImportError):
    """Metrics were asked for and prometheus_client is not installed; the message names the extra."""


def _flag(value: bool | None, name: str) -> bool:
    if value is not None:
        return value
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def telemetry_for(metrics: bool | None, tracing: bool | None) -> NoTelemetry:
    """The hooks for what is on (`None`: TWILIO_EVENTS_METRICS / TWILIO_EVENTS_TRACING); MissingExtra when
    metrics are on without prometheus_client. Tracing without opentelemetry-api stays off, with a warning."""
    prometheus = None
    if _flag(metrics, METRICS_ENV):
        try:
            from .metrics import PrometheusMetrics
        except ImportError:
            raise MissingExtra(
                "metrics=True needs prometheus_client: pip install 'twilio-events[prometheus]'"
            ) from None
        prometheus = PrometheusMetrics()
    spans = None
    if _flag(tracing, TRACING_ENV):
        try:
            from .tracing import Tracing
        except ImportError:
            logger.warning(
                "tracing is on but opentelemetry-api is not installed (pip install 'twilio-events[otel]'): "
                "no spans"
            )
        else:
            spans = Tracing()
    if prometheus is None and spans is None:
        return NO_TELEMETRY
    return Telemetry(prometheus, spans)

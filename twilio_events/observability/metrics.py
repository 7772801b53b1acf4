"""Prometheus metrics through prometheus_client (imported only when metrics are on).

Counters and histograms are updated as callbacks go by; the gauges of the durable queue and of
reconciliation are read from the store when Prometheus scrapes. With PROMETHEUS_MULTIPROC_DIR set,
prometheus_client keeps each process's values in files there, and a scrape of any process merges them.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
HANDLER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
DELAY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass(frozen=True, slots=True)
class Sample:
    """The gauges read at scrape time: the store's queue (durable) and reconciliation's watchlist."""

    store_up: bool
    waiting: int | None = None
    running: int | None = None
    dead: int | None = None
    oldest_waiting_age: float | None = None
    reconcile_waiting: int | None = None


Sampler = Callable[[], Awaitable[Sample]]
M = TypeVar("M", Counter, Histogram)


class _Children(Generic[M]):
    """A metric's children by label values, looked up once: `labels()` validates and locks every call,
    and label values here come from small fixed sets."""

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._children: dict[tuple[str, ...], M] = {}

    def __call__(self, *labels: str) -> M:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._metric.labels(*labels)
        return child


class PrometheusMetrics:
    """The app's metrics, in a registry of its own (or in PROMETHEUS_MULTIPROC_DIR's files)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.callbacks = Counter(
            "twilio_events_callbacks",
            "Callbacks recognised, by channel, status and outcome",
            ["channel", "status", "outcome"],
            registry=r,
        )
        self.refused = Counter(
            "twilio_events_requests_refused",
            "Requests refused before any handler ran, by HTTP status code and cause",
            ["code", "cause"],
            registry=r,
        )
        self.signed = Counter(
            "twilio_events_signed_requests",
            "Requests accepted, by the credential that signed them",
            ["credential"],
            registry=r,
        )
        self.handler_duration = Histogram(
            "twilio_events_handler_duration_seconds",
            "Time a handler took, by channel and handler",
            ["channel", "handler"],
            buckets=HANDLER_BUCKETS,
            registry=r,
        )
        self.delay = Histogram(
            "twilio_events_callback_delay_seconds",
            "Time from the callback's Timestamp (Twilio's clock) to its handler's end",
            ["channel"],
            buckets=DELAY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "twilio_events_retries",
            "Durable events that failed and wait for another attempt",
            ["channel"],
            registry=r,
        )
        self.dead_lettered = Counter(
            "twilio_events_dead_lettered", "Durable events moved to the dead letters", ["channel"], registry=r
        )
        self.recovered = Counter(
            "twilio_events_reconcile_recovered",
            "Statuses recovered from the REST API by reconciliation",
            ["channel"],
            registry=r,
        )
        self._callbacks = _Children(self.callbacks)
        self._refused = _Children(self.refused)
        self._signed = _Children(self.signed)
        self._handler_duration = _Children(self.handler_duration)
        self._delay = _Children(self.delay)
        self._retries = _Children(self.retries)
        self._dead_lettered = _Children(self.dead_lettered)
        self._recovered = _Children(self.recovered)

    def scrape(self, sample: Sample) -> bytes:
        """The exposition text: this process's metrics (every process's with PROMETHEUS_MULTIPROC_DIR) and
        the sampled gauges."""
        sampled = _Sampled(sample)
        if os.environ.get(MULTIPROC_ENV):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(sampled)
            return generate_latest(registry)
        return generate_latest(self.registry) + generate_latest(sampled)

    def callback(self, channel: str, status: str, outcome: str) -> None:
        """One recognised callback's outcome."""
        self._callbacks(channel, status, outcome).inc()

    def refusal(self, code: int, cause: str) -> None:
        """One refused request."""
        self._refused(str(code), cause).inc()

    def signature(self, credential: str) -> None:
        """One request signed with `credential`."""
        self._signed(credential).inc()

    def handled(self, channel: str, handler: str, seconds: float, timestamp: str | None) -> None:
        """A handler's duration, and the callback's delay from its Twilio Timestamp when it has one."""
        self._handler_duration(channel, handler).observe(seconds)
        if timestamp:
            sent = _sent_at(timestamp)
            if sent is not None:
                self._delay(channel).observe(max(0.0, time.time() - sent))

    def retried(self, channel: str, *, dead: bool) -> None:
        """A durable event failed: retried later, or dead-lettered."""
        (self._dead_lettered if dead else self._retries)(channel).inc()

    def recovery(self, channel: str) -> None:
        """A status recovered by reconciliation."""
        self._recovered(channel).inc()


@functools.lru_cache(maxsize=1024)
def _sent_at(timestamp: str) -> float | None:
    """An RFC 2822 Timestamp (calls, conferences) in seconds since the epoch; None when it cannot be read.
    Cached: the callbacks of one second share it, and parsing costs more than all the counting."""
    try:
        sent = parsedate_to_datetime(timestamp)
    except (TypeError, ValueError):
        return None
    return sent.timestamp() if sent.tzinfo is not None else None


class _Sampled:
    """A collector of the gauges read at scrape time."""

    def __init__(self, sample: Sample) -> None:
        self._sample = sample

    def collect(self) -> Iterable[Metric]:
        s = self._sample
        yield _gauge(
            "twilio_events_store_up", "1 when the store answered the scrape's questions", int(s.store_up)
        )
        gauges = (
            ("twilio_events_queue_waiting", "Durable events waiting to run (or to be retried)", s.waiting),
            ("twilio_events_queue_running", "Durable events held by a worker now", s.running),
            ("twilio_events_queue_dead_letters", "Durable events in the dead letters", s.dead),
            (
                "twilio_events_queue_oldest_waiting_age_seconds",
                "Age of the oldest durable event waiting to run (0 when none waits)",
                s.oldest_waiting_age,
            ),
            (
                "twilio_events_reconcile_waiting",
                "Calls and messages waiting for a final status",
                s.reconcile_waiting,
            ),
        )
        for name, documentation, value in gauges:
            if value is not None:
                yield _gauge(name, documentation, value)


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)

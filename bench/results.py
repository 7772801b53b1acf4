"""What a benchmark run records per row, and the figures derived from it."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from .load import LoadResult
from .rows import Row


@dataclass(frozen=True, slots=True)
class Measurement:
    """One load run against one server, with what the server spent on it."""

    load: LoadResult
    server_cpu_s: float
    other_cpu_s: float | None = None
    """CPU time other processes took on the server's CPU meanwhile (None when nothing is pinned)."""
    other_load_cpu_s: float | None = None
    """CPU time other processes took on the load generator's CPU meanwhile."""
    backlog: int = 0
    """Durable rows: events accepted but not yet handled (queued or running) when the load stopped."""
    drain_s: float = 0.0
    """Durable rows: how long the workers then took to handle them; CPU figures include that time."""

    @property
    def window_s(self) -> float:
        """The time the server's CPU is counted over: the load, then the drain of the backlog."""
        return self.load.duration_s + self.drain_s

    @property
    def cpu_us_per_request(self) -> float:
        return self.server_cpu_s * 1e6 / self.load.requests if self.load.requests else 0.0

    @property
    def handled_per_s(self) -> float:
        """Callbacks answered 2xx whose handler has run, per second of load and drain: the same as
        requests/s when the handler runs before the answer (inline), lower when a backlog was left."""
        handled = self.load.requests - self.load.non2xx
        return handled / self.window_s if self.window_s else 0.0

    @property
    def server_cpu_share(self) -> float:
        """Server CPU time over wall time: about 1.0 when the one server core was saturated."""
        return self.server_cpu_s / self.window_s if self.window_s else 0.0

    @property
    def other_cpu_share(self) -> float:
        """Share of the server's CPU that other processes took: above a few % the run was disturbed."""
        return self._share(self.other_cpu_s)

    @property
    def other_load_cpu_share(self) -> float:
        """Share of the load generator's CPU that other processes took."""
        return self._share(self.other_load_cpu_s)

    def _share(self, seconds: float | None) -> float:
        if seconds is None or not self.window_s:
            return 0.0
        return max(0.0, seconds) / self.window_s

    @property
    def loadgen_cpu_share(self) -> float:
        return self.load.loadgen_cpu_s / self.load.duration_s if self.load.duration_s else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            **self.load.as_dict(),
            "server_cpu_s": self.server_cpu_s,
            "server_cpu_us_per_request": self.cpu_us_per_request,
            "server_cpu_share": self.server_cpu_share,
            "loadgen_cpu_share": self.loadgen_cpu_share,
            "other_cpu_share": self.other_cpu_share,
            "other_load_cpu_share": self.other_load_cpu_share,
            "backlog": self.backlog,
            "drain_s": self.drain_s,
            "handled_per_s": self.handled_per_s,
        }


@dataclass(frozen=True, slots=True)
class Summary:
    """A row's figures: medians over its runs, memory, and every failed request."""

    requests_per_s: float
    handled_per_s: float
    p50_ms: float
    p99_ms: float
    cpu_us_per_request: float
    server_cpu_share: float
    loadgen_cpu_share_max: float
    other_cpu_share_max: float
    """The most other processes took of the server's CPU in any run."""
    other_load_cpu_share_max: float
    """The most other processes took of the load generator's CPU in any run."""
    peak_rss_mib: float
    idle_rss_mib: float
    errors: int
    backlog_max: int = 0
    """Durable rows: the most events left to handle when a run's load stopped."""
    drain_s_max: float = 0.0
    """Durable rows: the longest the workers took to handle them."""


@dataclass
class RowResult:
    row: Row
    skipped: str | None = None
    """Why the row was not measured (n/a, or the check or run that failed)."""
    port: int | None = None
    checks: list[str] = field(default_factory=list)
    idle_rss_mib: float | None = None
    peak_rss_mib: float | None = None
    warmup: Measurement | None = None
    runs: list[Measurement] = field(default_factory=list)

    @property
    def measured(self) -> bool:
        return self.skipped is None and bool(self.runs)

    def median(self, figure: Callable[[Measurement], float]) -> float:
        """The median of one figure over the measured runs."""
        return float(statistics.median(figure(run) for run in self.runs))

    @property
    def errors(self) -> int:
        return sum(run.load.errors for run in self.runs)

    def summary(self) -> Summary | None:
        if not self.measured:
            return None
        return Summary(
            requests_per_s=self.median(lambda run: run.load.requests_per_s),
            handled_per_s=self.median(lambda run: run.handled_per_s),
            p50_ms=self.median(lambda run: run.load.p50_ms),
            p99_ms=self.median(lambda run: run.load.p99_ms),
            cpu_us_per_request=self.median(lambda run: run.cpu_us_per_request),
            server_cpu_share=self.median(lambda run: run.server_cpu_share),
            loadgen_cpu_share_max=max(run.loadgen_cpu_share for run in self.runs),
            other_cpu_share_max=max(run.other_cpu_share for run in self.runs),
            other_load_cpu_share_max=max(run.other_load_cpu_share for run in self.runs),
            peak_rss_mib=self.peak_rss_mib or 0.0,
            idle_rss_mib=self.idle_rss_mib or 0.0,
            errors=self.errors,
            backlog_max=max(run.backlog for run in self.runs),
            drain_s_max=max(run.drain_s for run in self.runs),
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "number": self.row.number,
            "label": self.row.label,
            "validates_signature": self.row.validates_signature,
            "skipped": self.skipped,
            "checks": self.checks,
            "summary": asdict(summary) if (summary := self.summary()) else None,
            "warmup": self.warmup.as_dict() if self.warmup else None,
            "runs": [run.as_dict() for run in self.runs],
        }

"""The terminal report: the table (Markdown, ready to paste), the ratios and the targets."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .results import RowResult, Summary
from .rows import BASELINES, CELERY, DURABLE, METRICS, METRICS_GOAL, ROWS, SCALING, SUBJECT

HEADER = (
    "#",
    "server",
    "req/s",
    "handled/s",
    "p50 ms",
    "p99 ms",
    "CPU µs/req",
    "peak RSS MiB",
    "idle RSS MiB",
    "errors",
)
RIGHT_ALIGNED = {2, 3, 4, 5, 6, 7, 8, 9}
DURABLE_FIGURES: dict[str, Callable[[Summary], float]] = {
    "handled": lambda summary: summary.handled_per_s,
    "accepted": lambda summary: summary.requests_per_s,
    "cpu": lambda summary: summary.cpu_us_per_request,
}
DURABLE_GOAL = 0.5
"""Durable delivery (SQLite, Redis) should handle at least this share of the events inline delivery does."""
CELERY_GOAL = 8.0
"""Durable delivery to Redis should handle at least this many times the events of the Celery row."""
MEMORY_GOAL = 300
"""Bytes of RSS per callback the inline default store remembers, at most."""
LOADGEN_SATURATED = 0.9
SERVER_IDLE = 0.85
OTHER_LOAD = 0.05


@dataclass(frozen=True, slots=True)
class Target:
    text: str
    value: float | None
    goal: float
    at_least: bool
    """True when the value must reach the goal, False when it must stay below it."""
    unit: str = "x"

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value >= self.goal if self.at_least else self.value < self.goal

    def as_dict(self) -> dict[str, object]:
        return {"target": self.text, "value": self.value, "goal": self.goal, "met": self.met}


def table(results: list[RowResult]) -> list[str]:
    rows = [list(HEADER)]
    for result in results:
        summary = result.summary()
        if summary is None:
            reason = (result.skipped or "not measured").splitlines()[0]
            shown = "n/a" if reason.startswith("n/a") else "-"
            rows.append([result.row.number, f"{result.row.label}: {reason}"] + [shown] * (len(HEADER) - 2))
            continue
        rows.append(
            [
                result.row.number,
                result.row.label,
                f"{summary.requests_per_s:,.0f}",
                f"{summary.handled_per_s:,.0f}",
                f"{summary.p50_ms:.2f}",
                f"{summary.p99_ms:.2f}",
                f"{summary.cpu_us_per_request:.0f}",
                f"{summary.peak_rss_mib:.1f}",
                f"{summary.idle_rss_mib:.1f}",
                f"{summary.errors}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    lines = [_table_line(rows[0], widths)]
    lines.append(
        "|"
        + "|".join(
            ("-" * (w + 1) + ":") if i in RIGHT_ALIGNED else "-" * (w + 2) for i, w in enumerate(widths)
        )
        + "|"
    )
    lines.extend(_table_line(row, widths) for row in rows[1:])
    return lines


def _table_line(cells: list[str], widths: list[int]) -> str:
    padded = [
        cell.rjust(width) if i in RIGHT_ALIGNED and cell and cell[0].isdigit() else cell.ljust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    ]
    return "| " + " | ".join(padded) + " |"


def ratios(results: list[RowResult]) -> dict[str, float | None]:
    """Requests/s of the subject row over each baseline's (higher is better)."""
    return _ratios(results, lambda summary: summary.requests_per_s)


def cpu_ratios(results: list[RowResult]) -> dict[str, float | None]:
    """Server CPU per request of the subject row over each baseline's (lower is better). Other work
    on the machine disturbs this far less than requests/s."""
    return _ratios(results, lambda summary: summary.cpu_us_per_request)


def _ratios(results: list[RowResult], figure: Callable[[Summary], float]) -> dict[str, float | None]:
    summaries = {result.row.key: result.summary() for result in results}
    subject = summaries.get(SUBJECT)
    out: dict[str, float | None] = {}
    for key in BASELINES:
        baseline = summaries.get(key)
        out[key] = figure(subject) / figure(baseline) if subject and baseline and figure(baseline) else None
    return out


def durable_ratios(results: list[RowResult]) -> dict[str, dict[str, float | None]]:
    """Each durable row over the subject (inline): events handled/s and accepted req/s (higher is
    better), and CPU µs per request, the drain included (lower is better)."""
    summaries = {result.row.key: result.summary() for result in results}
    subject = summaries.get(SUBJECT)
    out: dict[str, dict[str, float | None]] = {}
    for key in DURABLE:
        if key not in summaries:
            continue
        durable = summaries[key]
        out[key] = {
            name: figure(durable) / figure(subject) if durable and subject and figure(subject) else None
            for name, figure in DURABLE_FIGURES.items()
        }
    return out


def handled_ratio(results: list[RowResult], key: str, other: str) -> float | None:
    """Events handled/s of row `key` over row `other`'s, or None when either was not measured."""
    summaries = {result.row.key: result.summary() for result in results}
    mine, theirs = summaries.get(key), summaries.get(other)
    return mine.handled_per_s / theirs.handled_per_s if mine and theirs and theirs.handled_per_s else None


def targets(results: list[RowResult], connections: int, memory_bytes: float | None = None) -> list[Target]:
    found = ratios(results)
    durable = durable_ratios(results)
    subject = next((r.summary() for r in results if r.row.key == SUBJECT), None)
    return [
        Target("row 4 >= 2x row 2 (Starlette route)", found["starlette_route"], 2.0, True),
        Target("row 4 >= 4x row 3 (Flask/gunicorn)", found["flask_gunicorn"], 4.0, True),
        Target(
            f"row 4 p99 < 5 ms at {connections} connections",
            subject.p99_ms if subject else None,
            goal=5.0,
            at_least=False,
            unit=" ms",
        ),
        Target("row 4 >= 0.5x row 1 (raw ASGI floor; an aim)", found["raw_asgi"], 0.5, True),
        Target(
            f"row 6a >= {DURABLE_GOAL}x row 4 (durable SQLite vs inline, events handled/s)",
            durable.get(DURABLE[0], {}).get("handled"),
            DURABLE_GOAL,
            True,
        ),
        Target(
            f"row 7 CPU µs/req < {METRICS_GOAL}x row 4 (the cost of metrics)",
            metrics_cost(results),
            METRICS_GOAL,
            False,
        ),
        Target(
            f"row 6b >= {DURABLE_GOAL}x row 4 (durable Redis vs inline, events handled/s)",
            durable.get(DURABLE[1], {}).get("handled"),
            DURABLE_GOAL,
            True,
        ),
        Target(
            f"row 6b >= {CELERY_GOAL:.0f}x row 8 (durable Redis vs Starlette + Celery, events handled/s)",
            handled_ratio(results, DURABLE[1], CELERY),
            CELERY_GOAL,
            True,
        ),
        Target(
            f"inline default store <= {MEMORY_GOAL} bytes of RSS per remembered callback",
            memory_bytes,
            MEMORY_GOAL,
            at_least=False,
            unit=" bytes",
        ),
    ]


def cpu_lines(results: list[RowResult]) -> list[str]:
    """CPU µs per event for each row: the figure other work on the machine disturbs least."""
    lines = ["CPU µs per event (server, its workers and its Redis; the drain included; lower is better):"]
    for result in results:
        summary = result.summary()
        shown = f"{summary.cpu_us_per_request:6.0f} µs" if summary else "     n/a"
        lines.append(f"  row {result.row.number:<3} {result.row.label:<45} {shown}")
    return lines


def scaling_lines(results: list[RowResult]) -> list[str]:
    """Row 6b's app in 1 and 2 processes against one Redis: events handled/s and CPU µs per event."""
    summaries = {result.row.key: result.summary() for result in results}
    one, two = (summaries.get(key) for key in SCALING)
    if one is None or two is None:
        return []
    return [
        "scaling (row 6b's app, durable, one Redis; the 2nd process shares the load generator's CPU):",
        f"  1 process:   {one.handled_per_s:8,.0f} handled/s  {one.cpu_us_per_request:5.0f} µs CPU/event",
        f"  2 processes: {two.handled_per_s:8,.0f} handled/s  {two.cpu_us_per_request:5.0f} µs CPU/event  "
        f"({two.handled_per_s / one.handled_per_s:.2f}x the handled/s of 1 process)",
    ]


def metrics_cost(results: list[RowResult]) -> float | None:
    """Row 7's CPU per request over row 4's: what metrics cost (None when either row did not run)."""
    summaries = {result.row.key: result.summary() for result in results}
    subject, metrics = summaries.get(SUBJECT), summaries.get(METRICS)
    if not subject or not metrics or not subject.cpu_us_per_request:
        return None
    return metrics.cpu_us_per_request / subject.cpu_us_per_request


def ratio_lines(results: list[RowResult]) -> list[str]:
    labels = {row.key: f"row {row.number} ({row.label})" for row in ROWS}
    width = max(len(labels[key]) for key in BASELINES)
    lines = [f"{'row 4 compared with':<{width}}  req/s (higher is better)  CPU µs/req (lower is better)"]
    by_cpu = cpu_ratios(results)
    for key, value in ratios(results).items():
        lines.append(f"{labels[key]:<{width}}  {_times(value):>24}  {_times(by_cpu[key]):>28}")
    durable = durable_ratios(results)
    if durable:
        names = {
            "twilio_events_durable_sqlite": "durable SQLite",
            "twilio_events_durable_redis": "durable Redis",
        }
        width = max(len(f"{names[key]} vs inline (row {_number(key)} / row 4)") for key in durable)
        lines.append("")
        lines.append(
            f"{'durable vs inline':<{width}}  handled/s (higher is better)  accepted req/s  "
            "CPU µs/req (lower is better)"
        )
        for key, found in durable.items():
            label = f"{names[key]} vs inline (row {_number(key)} / row 4)"
            lines.append(
                f"{label:<{width}}  {_times(found['handled']):>28}  {_times(found['accepted']):>14}  "
                f"{_times(found['cpu']):>28}"
            )
    summaries = {result.row.key: result.summary() for result in results}
    redis, celery = summaries.get(DURABLE[1]), summaries.get(CELERY)
    if redis and celery:
        handled = _times(handled_ratio(results, DURABLE[1], CELERY))
        cpu = _times(redis.cpu_us_per_request / celery.cpu_us_per_request)
        lines.append("")
        lines.append(
            f"durable Redis vs Starlette + Celery (row 6b / row 8): {handled} the handled/s, "
            f"{cpu} the CPU µs per event"
        )
    return lines


def _number(key: str) -> str:
    return next(row.number for row in ROWS if row.key == key)


def _times(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else "n/a"


def target_lines(found: list[Target]) -> list[str]:
    lines = []
    for target in found:
        if target.value is None:
            lines.append(f"[{'n/a':^7}] {target.text}")
            continue
        state = "met" if target.met else "NOT met"
        value = f"{target.value:.0f}" if target.unit == " bytes" else f"{target.value:.2f}"
        lines.append(f"[{state:^7}] {target.text}: {value}{target.unit}")
    return lines


def notes(results: list[RowResult]) -> list[str]:
    """What makes a figure less than it seems: a saturated load generator, an idle server."""
    out = []
    for result in results:
        summary = result.summary()
        if summary is None:
            continue
        name = f"row {result.row.number}"
        if not result.row.validates_signature:
            out.append(f"{name} validates no signature: it is the floor, not a contender.")
        loadgen = summary.loadgen_cpu_share_max
        if loadgen > LOADGEN_SATURATED:
            out.append(
                f"{name}: the load generator used {loadgen:.0%} of its CPU: it may be the limit, "
                "not the server."
            )
        server = summary.server_cpu_share
        if server < SERVER_IDLE:
            out.append(f"{name}: the server used only {server:.0%} of its CPU; it was not saturated.")
        if max(summary.other_cpu_share_max, summary.other_load_cpu_share_max) >= OTHER_LOAD:
            out.append(
                f"{name}: other processes were busy on the benchmark CPUs during some runs (up to "
                f"{summary.other_cpu_share_max:.0%} of the server's, {summary.other_load_cpu_share_max:.0%} "
                "of the load generator's); where its runs differ, that is why. CPU µs/req is the figure "
                "they disturb least."
            )
        if summary.backlog_max:
            out.append(
                f"{name} acknowledges before its workers run the handler, and they fell behind: up to "
                f"{summary.backlog_max:,} events were left to handle when the load stopped, which took up to "
                f"{summary.drain_s_max:.1f} s more. handled/s and CPU µs/req count that time; req/s does not."
            )
        if result.errors:
            statuses = {run.load.first_non2xx_status for run in result.runs if run.load.first_non2xx_status}
            out.append(
                f"{name}: {result.errors} failed requests (non-2xx statuses seen: {sorted(statuses)})."
            )
    return out

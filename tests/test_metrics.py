"""Prometheus metrics: a real uvicorn server scraped after a lifecycle, and two processes sharing a
PROMETHEUS_MULTIPROC_DIR, read back with prometheus_client's own text parser."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from twilio_events import CallEvent, CallStatus, ConfigurationError, SmsEvent, SmsStatus, TwilioEvents
from twilio_events.testing import call_payload, sms_payload

from .conftest import DEADLINE, FORM, TOKEN, LiveServer, Process, encode_form, free_port, wait_for

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: LiveServer, target: str = "/metrics") -> Samples:
    """Every sample of the exposition, by name and labels, parsed by prometheus_client."""
    response = server.request("GET", target)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sample's value; 0 when it was never recorded."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def metrics_app(**config: object) -> TwilioEvents:
    app = TwilioEvents(auth_token=TOKEN, metrics=True, ordering="monotonic", **config)  # type: ignore[arg-type]

    @app.call.on_any
    async def call(event: CallEvent) -> None:
        return None

    @app.sms.on_delivered
    def delivered(event: SmsEvent) -> None:
        raise RuntimeError("the message handler fails")

    return app


def test_a_scrape_counts_what_was_sent(serve: Callable[..., LiveServer]) -> None:
    server = serve(metrics_app(), lifespan="on")
    sid = "CA" + "1" * 32
    lifecycle = [
        call_payload(status, CallSid=sid, SequenceNumber=str(n))
        for n, status in enumerate(
            (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.IN_PROGRESS, CallStatus.COMPLETED)
        )
    ]
    for payload in lifecycle:
        assert server.callback(payload).status_code == 200
    assert server.callback(lifecycle[3]).status_code == 200  # a copy: duplicate
    assert server.callback(lifecycle[2]).status_code == 200  # a copy: duplicate
    late = call_payload(CallStatus.RINGING, CallSid=sid, SequenceNumber="9")
    assert server.callback(late).status_code == 200  # after completed: out of order
    assert server.callback(sms_payload(SmsStatus.DELIVERED)).status_code == 500
    assert server.callback(sms_payload(SmsStatus.SENT)).status_code == 200  # no handler
    # refused: a forged signature, no signature, a wrong content type, a body too large, not Twilio's
    assert server.callback(call_payload(), signature="forged").status_code == 403
    assert server.callback(call_payload(), signature="").status_code == 403
    headers = {"Content-Type": "text/plain"}
    assert server.callback(call_payload(), headers=headers).status_code == 415
    assert server.callback({"Body": "x" * 70_000}).status_code == 413
    assert server.callback({"Hello": "world"}).status_code == 400

    samples = scrape(server)

    callbacks = "twilio_events_callbacks_total"
    for status in ("initiated", "ringing", "in-progress", "completed"):
        assert value(samples, callbacks, channel="call", status=status, outcome="handled") == 1
    assert value(samples, callbacks, channel="call", status="completed", outcome="duplicate") == 1
    assert value(samples, callbacks, channel="call", status="in-progress", outcome="duplicate") == 1
    assert value(samples, callbacks, channel="call", status="ringing", outcome="out_of_order") == 1
    assert value(samples, callbacks, channel="sms", status="delivered", outcome="failed") == 1
    assert value(samples, callbacks, channel="sms", status="sent", outcome="unhandled") == 1
    assert total(samples, callbacks) == 9

    refused = "twilio_events_requests_refused_total"
    assert value(samples, refused, code="403", cause="signature") == 1
    assert value(samples, refused, code="403", cause="no-signature") == 1
    assert value(samples, refused, code="415", cause="media-type") == 1
    assert value(samples, refused, code="413", cause="too-large") == 1
    assert value(samples, refused, code="400", cause="unrecognised") == 1
    assert total(samples, refused) == 5

    # every request whose signature matched, by the credential that signed it (the 400 was signed too)
    assert value(samples, "twilio_events_signed_requests_total", credential="primary auth token") == 10

    durations = "twilio_events_handler_duration_seconds_count"
    assert value(samples, durations, channel="call", handler="metrics_app.<locals>.call") == 4
    assert total(samples, durations, channel="sms") == 0  # its one handler failed
    # call payloads carry Twilio's Timestamp: the delay from it to the handler's end
    assert value(samples, "twilio_events_callback_delay_seconds_count", channel="call") == 4
    assert value(samples, "twilio_events_callback_delay_seconds_sum", channel="call") < DEADLINE * 4
    assert value(samples, "twilio_events_store_up") == 1
    assert total(samples, "twilio_events_queue_waiting") == 0  # inline: no queue gauges


def test_metrics_answer_get_only_and_only_when_on(serve: Callable[..., LiveServer]) -> None:
    on = serve(metrics_app(path="/twilio"), lifespan="on")
    assert on.request("GET", "/twilio/metrics").status_code == 200
    assert on.request("POST", "/twilio/metrics").status_code == 405
    off = serve(TwilioEvents(auth_token=TOKEN), lifespan="on")
    assert off.request("GET", "/metrics").status_code == 404


def test_durable_gauges_retries_and_dead_letters(serve: Callable[..., LiveServer], tmp_path: Path) -> None:
    app = TwilioEvents(
        auth_token=TOKEN,
        metrics=True,
        delivery="durable",
        store=f"sqlite:///{tmp_path / 'events.db'}",
        max_attempts=2,
        retry_delay=0.01,
    )

    @app.call.on_completed
    def completed(event: CallEvent) -> None:
        raise RuntimeError("always fails")

    server = serve(app, lifespan="on")
    assert server.callback(call_payload(CallStatus.COMPLETED)).status_code == 200

    def dead() -> bool:  # the counter follows the store's answer: wait for both
        samples = scrape(server)
        counted = value(samples, "twilio_events_dead_lettered_total", channel="call")
        return value(samples, "twilio_events_queue_dead_letters") == 1 and counted == 1

    wait_for(dead, "the event to reach the dead letters")
    samples = scrape(server)
    assert (
        value(samples, "twilio_events_callbacks_total", channel="call", status="completed", outcome="queued")
        == 1
    )
    assert (
        value(samples, "twilio_events_callbacks_total", channel="call", status="completed", outcome="failed")
        == 2
    )
    assert value(samples, "twilio_events_retries_total", channel="call") == 1
    assert value(samples, "twilio_events_dead_lettered_total", channel="call") == 1
    assert value(samples, "twilio_events_queue_waiting") == 0
    assert value(samples, "twilio_events_queue_running") == 0
    assert value(samples, "twilio_events_queue_oldest_waiting_age_seconds") == 0


def test_metrics_without_prometheus_client_name_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # import fails as if not installed
    monkeypatch.delitem(sys.modules, "twilio_events.observability.metrics", raising=False)
    with pytest.raises(ConfigurationError, match=r"twilio-events\[prometheus\]"):
        TwilioEvents(auth_token=TOKEN, metrics=True)


def test_off_imports_neither_prometheus_client_nor_opentelemetry() -> None:
    code = (
        "import sys\n"
        "from twilio_events import TwilioEvents\n"
        "from twilio_events.testing import TwilioTestClient, call_payload\n"
        "app = TwilioEvents(auth_token='t')\n"
        "assert TwilioTestClient(app).callback(call_payload()).status_code == 200\n"
        "loaded = [m for m in sys.modules if m.startswith(('prometheus_client', 'opentelemetry'))]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr


APP = """\
import os
from twilio_events import TwilioEvents

app = TwilioEvents(metrics=True)


@app.call.on_any
def call(event):
    pass
"""


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[list[tuple[Process, int]]]:
    """Two uvicorn processes serving one app, their metrics in one PROMETHEUS_MULTIPROC_DIR."""
    shared = tmp_path / "prometheus"
    shared.mkdir()
    started: list[tuple[Process, int]] = []
    for name in ("first", "second"):
        cwd = tmp_path / name
        cwd.mkdir()
        (cwd / "app.py").write_text(APP, encoding="utf-8")
        port = free_port()
        env = {"TWILIO_AUTH_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
        args = ["-m", "uvicorn", "app:app", "--port", str(port), "--log-level", "warning"]
        started.append((Process(args, cwd, env), port))
    yield started
    for process, _ in started:
        process.kill()


def test_one_scrape_sees_every_process(two_processes: list[tuple[Process, int]]) -> None:
    servers = []
    for process, port in two_processes:
        server = client_for(port)
        servers.append(server)

        def up(server: LiveServer = server, process: Process = process) -> bool:
            if process.popen.poll() is not None:
                pytest.fail(f"uvicorn exited:\n{process.stderr}")
            try:
                return server.request("GET", "/health").status_code == 200
            except Exception:
                return False

        wait_for(up, f"uvicorn on port {port}")
    try:
        for count, server in zip((2, 3), servers, strict=True):
            for _ in range(count):
                payload = call_payload(CallStatus.RINGING)
                response = server.http.post(
                    server.url("/"),
                    content=encode_form(payload),
                    headers={"Content-Type": FORM, "X-Twilio-Signature": _signature(server, payload)},
                )
                assert response.status_code == 200, response.text
        for server in servers:  # either process answers with the sum of both
            samples = scrape(server)
            handled = value(
                samples, "twilio_events_callbacks_total", channel="call", status="ringing", outcome="handled"
            )
            assert handled == 5
            assert (
                value(samples, "twilio_events_handler_duration_seconds_count", channel="call", handler="call")
                == 5
            )
    finally:
        for server in servers:
            server.close()


def client_for(port: int) -> LiveServer:
    """A client for a server in another process, with the helpers of the in-process ones."""
    return LiveServer(None, port)  # type: ignore[arg-type]  # only the port and the client are used


def _signature(server: LiveServer, payload: dict[str, str]) -> str:
    from twilio_events.testing import sign

    return sign(server.url("/"), payload, TOKEN)


def test_run_metrics_serves_them(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(APP.replace("metrics=True", ""), encoding="utf-8")
    port = free_port()
    args = ["-m", "twilio_events", "run", "app.py", "--metrics", "--port", str(port)]
    process = Process(args, tmp_path, {"TWILIO_AUTH_TOKEN": TOKEN})
    server = client_for(port)
    try:

        def up() -> bool:
            if process.popen.poll() is not None:
                pytest.fail(f"twilio-events run exited:\n{process.stderr}")
            try:
                return server.request("GET", "/health").status_code == 200
            except Exception:
                return False

        wait_for(up, "twilio-events run")
        payload = call_payload(CallStatus.RINGING)
        response = server.http.post(
            server.url("/"),
            content=encode_form(payload),
            headers={"Content-Type": FORM, "X-Twilio-Signature": _signature(server, payload)},
        )
        assert response.status_code == 200
        samples = scrape(server)
        assert (
            value(
                samples, "twilio_events_callbacks_total", channel="call", status="ringing", outcome="handled"
            )
            == 1
        )
    finally:
        server.close()
        process.kill()

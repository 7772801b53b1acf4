"""Log output in real processes: the level uvicorn was given wins, and JSON lines with stable keys."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from twilio_events.observability.logging import CALLBACK_KEYS, JsonFormatter, callback_fields
from twilio_events.testing import call_payload, sign

from .conftest import DEADLINE, FORM, TOKEN, Process, encode_form, free_port, wait_for

Spawn = Callable[..., Process]

APP = """\
from twilio_events import TwilioEvents

app = TwilioEvents()


@app.call.on_ringing
def ringing(event):
    pass
"""

KEYS = ["time", "level", "logger", "message", *CALLBACK_KEYS]


def serving(
    spawn: Spawn, tmp_path: Path, args: list[str], env: dict[str, str] | None = None
) -> tuple[Process, int]:
    """`python ARGS --port PORT` in tmp_path with the test app in app.py, once it answers."""
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    port = free_port()
    process = spawn([*args, "--port", str(port)], {"TWILIO_AUTH_TOKEN": TOKEN, **(env or {})})

    def up() -> bool:
        if process.popen.poll() is not None:
            pytest.fail(f"the server exited ({process.popen.returncode}):\n{process.stderr}")
        try:
            return httpx2.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except httpx2.HTTPError:
            return False

    wait_for(up, f"a server on port {port}")
    return process, port


def send_ringing(port: int) -> str:
    """One signed ringing callback, answered 200; its CallSid."""
    url = f"http://127.0.0.1:{port}/"
    payload = call_payload("ringing")
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(url, payload, TOKEN)}
    response = httpx2.post(url, content=encode_form(payload), headers=headers, timeout=DEADLINE)
    assert response.status_code == 200, response.text
    return payload["CallSid"]


def stop(process: Process) -> str:
    """Stop the server with SIGTERM; all it wrote to stderr."""
    process.terminate()
    process.wait()
    return process.stderr


@pytest.mark.parametrize("level", ["warning", "error"])
def test_uvicorns_log_level_silences_the_callback_lines(spawn: Spawn, tmp_path: Path, level: str) -> None:
    process, port = serving(spawn, tmp_path, ["-m", "uvicorn", "app:app", "--log-level", level])
    sid = send_ringing(port)
    stderr = stop(process)
    assert sid not in stderr
    assert "twilio_events ready" not in stderr


def test_uvicorns_info_level_shows_them(spawn: Spawn, tmp_path: Path) -> None:
    process, port = serving(spawn, tmp_path, ["-m", "uvicorn", "app:app", "--log-level", "info"])
    sid = send_ringing(port)
    wait_for(lambda: sid in process.stderr, "the callback's log line")
    assert f"call ringing {sid} -> ringing()" in stop(process)


def test_twilio_events_log_level_overrides_uvicorns_for_the_library(spawn: Spawn, tmp_path: Path) -> None:
    args = ["-m", "uvicorn", "app:app", "--log-level", "info"]
    process, port = serving(spawn, tmp_path, args, {"TWILIO_EVENTS_LOG_LEVEL": "warning"})
    sid = send_ringing(port)
    stderr = stop(process)
    assert sid not in stderr
    assert "Uvicorn running" in stderr  # uvicorn's own lines keep uvicorn's level


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parsed as JSON: fails on a line that is not one JSON object."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert lines and all(isinstance(line, dict) for line in lines)
    return lines


def test_run_log_format_json_writes_every_line_as_json(spawn: Spawn, tmp_path: Path) -> None:
    process, port = serving(spawn, tmp_path, ["-m", "twilio_events", "run", "app.py", "--log-format", "json"])
    sid = send_ringing(port)
    wait_for(lambda: sid in process.stderr, "the callback's log line")
    lines = json_lines(stop(process))
    assert all(list(line) == KEYS for line in lines), lines
    (handled,) = [line for line in lines if line["sid"] == sid]
    assert handled["level"] == "INFO"
    assert handled["logger"] == "twilio_events"
    assert handled["listener"] == "twilioListener"
    assert (handled["channel"], handled["status"], handled["outcome"]) == ("call", "ringing", "handled")
    assert handled["handler"] == "ringing"
    assert isinstance(handled["duration_ms"], float) and handled["duration_ms"] >= 0
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's lines too


def test_json_format_under_uvicorn(spawn: Spawn, tmp_path: Path) -> None:
    args = ["-m", "uvicorn", "app:app", "--log-level", "info"]
    process, port = serving(spawn, tmp_path, args, {"TWILIO_EVENTS_LOG_FORMAT": "json"})
    sid = send_ringing(port)
    wait_for(lambda: sid in process.stderr, "the callback's log line")
    library = [line for line in stop(process).splitlines() if line.startswith("{")]
    records = json_lines("\n".join(library))
    assert any(record["sid"] == sid and record["outcome"] == "handled" for record in records)


def test_the_formatter_keeps_its_keys_for_any_record() -> None:
    record = logging.LogRecord("other", logging.WARNING, __file__, 1, "plain %s", ("line",), None)
    line = json.loads(JsonFormatter().format(record))
    assert list(line) == KEYS
    assert line["message"] == "plain line" and line["sid"] is None
    fields = callback_fields("l", "sms", "sent", "SM1", "duplicate")
    record = logging.LogRecord("twilio_events", logging.INFO, __file__, 1, "dup", (), None)
    record.__dict__.update(fields)
    line = json.loads(JsonFormatter().format(record))
    assert (line["listener"], line["channel"], line["status"], line["sid"], line["outcome"]) == (
        "l",
        "sms",
        "sent",
        "SM1",
        "duplicate",
    )

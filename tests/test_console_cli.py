"""`twilio-events run --console`: the console of a mounted app, and a clear line when there is no app."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx2

from .conftest import DEADLINE, TOKEN, Process, assert_one_line_error, free_port
from .test_cli_run import FASTAPI_APP, PLAIN_ASGI_APP, cli, stdout_of, wait_serving

Spawn = Callable[..., Process]


def test_run_console_serves_the_mounted_apps_console(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FASTAPI_APP, encoding="utf-8")
    port = free_port()
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "", "TWILIO_EVENTS_VALIDATE_SIGNATURE": ""}
    args = ["-m", "twilio_events", "run", "app.py", "--console", "--host", "127.0.0.1", "--port", str(port)]
    process = spawn(args, env)
    wait_serving(process, port)

    console = f"http://127.0.0.1:{port}/twilio/console/"
    assert f"Live console (this machine only): {console}" in stdout_of(process)
    page = httpx2.get(console, timeout=DEADLINE)
    assert page.status_code == 200 and "twilio-events console" in page.text
    assert httpx2.get(f"http://127.0.0.1:{port}/health", timeout=DEADLINE).json() == {"status": "ok"}


def test_run_without_console_serves_none(spawn: Spawn, tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FASTAPI_APP, encoding="utf-8")
    port = free_port()
    env = {"TWILIO_AUTH_TOKEN": TOKEN, "TWILIO_ACCOUNT_SID": "", "TWILIO_EVENTS_VALIDATE_SIGNATURE": ""}
    process = spawn(["-m", "twilio_events", "run", "app.py", "--host", "127.0.0.1", "--port", str(port)], env)
    wait_serving(process, port)

    assert "Live console" not in stdout_of(process)
    assert httpx2.get(f"http://127.0.0.1:{port}/twilio/console/", timeout=DEADLINE).status_code == 404


def test_console_needs_a_twilio_events_app(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(PLAIN_ASGI_APP, encoding="utf-8")

    result = cli("run", "app.py:app", "--console", cwd=tmp_path)

    assert_one_line_error(result, "--console needs a TwilioEvents app")


def test_console_needs_one_process(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(FASTAPI_APP, encoding="utf-8")

    result = cli("run", "app.py", "--console", "--workers", "2", cwd=tmp_path)

    assert_one_line_error(result, "needs one process", "--workers 2")

"""`twilio-events reconcile`: the real console script, a service's SQLite store, and a fake of Twilio's
REST API on 127.0.0.1; the recovered status is then run once by the real service, and the late real
callback runs nothing."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx2

from twilio_events.reconcile import SqliteWatchlist
from twilio_events.stores.sqlite import SqliteStore
from twilio_events.testing import TEST_ACCOUNT_SID, sign, sms_payload

from .conftest import FORM, TOKEN, Process, encode_form, free_port, wait_for
from .fake_rest_api import fake_rest_api

SCRIPT = Path(sys.executable).with_name("twilio-events")
SERVICE = """\
import os
from twilio_events import TwilioEvents

app = TwilioEvents(
    delivery="durable",
    store="sqlite:///" + os.environ["EVENTS_DB"],
    reconcile_after=3600,
)


@app.sms.on_delivered
def delivered(event):
    with open(os.environ["EVENTS_OUT"], "a") as out:
        out.write(f"{event.message_sid} {event.recovered}\\n")
"""


def watch(db: Path, sid: str) -> None:
    """What the service recorded when it handled the message's `sent` status."""

    async def touch() -> None:
        watchlist = SqliteWatchlist(str(db))
        await watchlist.touch("sms", sid, TEST_ACCOUNT_SID, "sent")
        await watchlist.close()

    asyncio.run(touch())


def queued(db: Path) -> int:
    async def stats() -> int:
        store = SqliteStore(db)
        await store.open(recover=False)
        try:
            return (await store.stats()).queued
        finally:
            await store.close()

    return asyncio.run(stats())


def test_reconcile_lists_then_delivers_what_the_callbacks_missed(
    tmp_path: Path, spawn: Callable[..., Process]
) -> None:
    db, out = tmp_path / "events.db", tmp_path / "out.txt"
    (tmp_path / "service.py").write_text(SERVICE)
    sid = "SM" + "c" * 32
    with fake_rest_api(TEST_ACCOUNT_SID, TOKEN) as api:
        api.add_message(sid, "delivered")
        env = {
            **os.environ,
            "EVENTS_DB": str(db),
            "EVENTS_OUT": str(out),
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": TEST_ACCOUNT_SID,
            "TWILIO_EVENTS_API_BASE_URL": api.base_url,
            "NO_PROXY": "127.0.0.1",
        }
        queued_before = queued(db)
        watch(db, sid)

        def reconcile(*extra: str) -> subprocess.CompletedProcess[str]:
            command = [str(SCRIPT), "reconcile", "service.py", *extra]
            return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)

        dry = reconcile("--since", "1h", "--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert sid in dry.stdout and "would deliver" in dry.stdout
        assert "1 status(es) would deliver" in dry.stdout
        assert queued(db) == queued_before

        done = reconcile("--since", "1h")
        assert done.returncode == 0, done.stderr
        assert "delivered" in done.stdout and "sent" in done.stdout
        assert queued(db) == queued_before + 1
        assert api.fetches(sid) == 2

        again = reconcile("--since", "1h")
        assert "nothing to deliver" in again.stdout, "the SID is no longer waiting"

    port = free_port()
    service = spawn(
        ["-m", "twilio_events", "run", "service.py", "--host", "127.0.0.1", "--port", str(port)], env=env
    )
    wait_for(lambda: out.exists() and out.read_text() == f"{sid} True\n", "the service to run it")
    late = sms_payload("delivered", MessageSid=sid, SmsSid=sid)
    url = f"http://127.0.0.1:{port}/"
    headers = {"Content-Type": FORM, "X-Twilio-Signature": sign(url, late, TOKEN)}
    assert httpx2.post(url, content=encode_form(late), headers=headers, timeout=30).status_code == 200
    service.terminate()
    assert service.wait() == 0
    assert out.read_text() == f"{sid} True\n", "the late real callback ran nothing"


def test_reconcile_without_reconciliation_configured_says_what_to_set(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text("from twilio_events import TwilioEvents\napp = TwilioEvents()\n")
    env = {**os.environ, "TWILIO_AUTH_TOKEN": TOKEN}

    result = subprocess.run(
        [str(SCRIPT), "reconcile", "plain.py", "--since", "1h"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 1
    assert result.stderr.strip() == (
        "twilio-events: error: reconciliation is off for plain.py: set TwilioEvents(reconcile_after=...)"
    )


def test_a_bad_age_is_refused_in_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "reconcile", "x.py", "--since", "soon"], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert "--since 'soon': give an age such as 90s, 30m, 1h or 2d" in result.stderr

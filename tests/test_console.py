"""The console over plain HTTP: who may see it, what it shows (never a secret), replay and the inbox."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from twilio_events import CallEvent, TwilioEvents
from twilio_events.payloads import call_payload
from twilio_events.payloads_streams import call_status_cloudevent, event_streams_body, sign_event_streams
from twilio_events.payloads_voice import recording_status_payload
from twilio_events.testing import sign

from .conftest import TOKEN, wait_for

LOOPBACK = ("127.0.0.1", 50123)
HERE = "http://127.0.0.1:8090"
"""The console's address as its browser names it (the Host header must name this machine)."""
ELSEWHERE = ("203.0.113.7", 50123)
ACT = {"X-Twilio-Events-Console": "1"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def post_callback(
    client: TestClient, params: dict[str, str], token: str | None = None, path: str = "/"
) -> Any:
    """POST `params` signed for `path` as Twilio would, with an idempotency token when given."""
    headers = {"X-Twilio-Signature": sign(str(client.base_url).rstrip("/") + path, params, TOKEN)}
    if token:
        headers["I-Twilio-Idempotency-Token"] = token
    return client.post(path, data=params, headers=headers)


def callbacks(client: TestClient) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = client.get("/console/api/callbacks").json()["callbacks"]
    return rows


@pytest.fixture
def app() -> TwilioEvents:
    app = TwilioEvents(auth_token=TOKEN, console=True)

    @app.call.on_ringing
    def ringing(event: CallEvent) -> None:
        pass

    @app.call.on_completed
    def completed(event: CallEvent) -> None:
        pass

    return app


@pytest.fixture
def local(app: TwilioEvents) -> Iterator[TestClient]:
    with TestClient(app, base_url=HERE, client=LOOPBACK) as client:
        yield client


def test_the_console_is_off_unless_asked_for() -> None:
    with TestClient(TwilioEvents(auth_token=TOKEN), base_url=HERE, client=LOOPBACK) as client:
        assert client.get("/console/").status_code == 404


def test_the_environment_turns_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_CONSOLE", "true")
    with TestClient(TwilioEvents(auth_token=TOKEN), base_url=HERE, client=LOOPBACK) as client:
        assert client.get("/console/").status_code == 200


@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "127.0.0.2", "::ffff:127.0.0.1"])
def test_loopback_clients_see_the_page(app: TwilioEvents, address: str) -> None:
    with TestClient(app, base_url=HERE, client=(address, 1)) as client:
        page = client.get("/console/")
    assert page.status_code == 200
    assert "twilio-events console" in page.text
    assert page.headers["x-frame-options"] == "DENY"


def test_other_clients_are_refused_without_credentials(app: TwilioEvents) -> None:
    with TestClient(app, base_url=HERE, client=ELSEWHERE) as client:
        for target in ("/console/", "/console/api/callbacks", "/console/static/console.js"):
            answer = client.get(target)
            assert answer.status_code == 403, target
            assert "only this machine" in answer.text


def test_a_proxied_request_is_not_taken_for_a_local_one(local: TestClient) -> None:
    assert local.get("/console/", headers={"X-Forwarded-For": "203.0.113.7"}).status_code == 403


@pytest.mark.parametrize("host", ["localhost:8090", "127.0.0.1", "[::1]:8090", "app.localhost"])
def test_a_local_page_names_this_machine(local: TestClient, host: str) -> None:
    assert local.get("/console/", headers={"Host": host}).status_code == 200


def test_another_sites_name_resolved_to_this_machine_is_refused(local: TestClient) -> None:
    assert local.get("/console/api/callbacks", headers={"Host": "evil.example:8090"}).status_code == 403


def test_with_credentials_everyone_must_give_them() -> None:
    app = TwilioEvents(auth_token=TOKEN, console=True, console_auth=("ops", "s3cret"))
    with TestClient(app, base_url=HERE, client=ELSEWHERE) as client:
        refused = client.get("/console/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic ")
        assert client.get("/console/", headers=basic("ops", "wrong")).status_code == 401
        assert client.get("/console/", headers=basic("ops", "s3cret")).status_code == 200
        assert client.get("/console/api/callbacks", headers=basic("ops", "s3cret")).status_code == 200
    with TestClient(app, base_url=HERE, client=LOOPBACK) as client:
        assert client.get("/console/").status_code == 401


def test_credentials_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_CONSOLE_AUTH", "ops:pw")
    app = TwilioEvents(auth_token=TOKEN, console=True)
    with TestClient(app, base_url=HERE, client=ELSEWHERE) as client:
        assert client.get("/console/", headers=basic("ops", "pw")).status_code == 200


def test_the_page_never_shows_the_token_nor_a_signature(local: TestClient) -> None:
    params = dict(call_payload("ringing"))
    signature = sign(HERE + "/", params, TOKEN)
    answer = local.post("/", data=params, headers={"X-Twilio-Signature": signature})
    assert answer.status_code == 200
    local.post("/", data=params, headers={"X-Twilio-Signature": "forged"})
    entry = callbacks(local)[0]["id"]
    shown = [
        local.get("/console/").text,
        local.get("/console/static/console.js").text,
        local.get("/console/api/callbacks").text,
        local.get(f"/console/api/callbacks/{entry}").text,
        local.get(f"/console/api/callbacks/{entry - 1}").text,
        local.get(f"/console/api/timeline/{params['CallSid']}").text,
        local.post("/console/api/replay", json={"id": entry - 1}, headers=ACT).text,
    ]
    for text in shown:
        assert TOKEN not in text
        assert signature not in text
        assert "forged" not in text


def test_the_webhook_path_does_not_serve_the_console(app: TwilioEvents, local: TestClient) -> None:
    assert local.get("/").status_code == 405  # the webhook path answers Twilio's POSTs only
    params = dict(call_payload("ringing"))
    signed = {"X-Twilio-Signature": sign(HERE + "/console/", params, TOKEN)}
    assert local.post("/console/", data=params, headers=signed).status_code == 405
    assert local.post("/console", data=params, headers=signed).status_code in (307, 405)
    assert callbacks(local) == []  # none of these reached the handlers, nor the recorder


def test_actions_need_the_page_header_and_its_origin(local: TestClient) -> None:
    post_callback(local, dict(call_payload("ringing")))
    entry = callbacks(local)[0]["id"]
    assert local.post("/console/api/replay", json={"id": entry}).status_code == 403
    elsewhere = {**ACT, "Origin": "https://evil.example"}
    assert local.post("/console/api/replay", json={"id": entry}, headers=elsewhere).status_code == 403
    same = {**ACT, "Origin": HERE}
    assert local.post("/console/api/replay", json={"id": entry}, headers=same).status_code == 200
    behind_tls = {**ACT, "Origin": HERE.replace("http:", "https:")}
    assert local.post("/console/api/replay", json={"id": entry}, headers=behind_tls).status_code == 200


def test_each_callback_is_listed_with_its_outcome(local: TestClient) -> None:
    ringing = dict(call_payload("ringing"))
    post_callback(local, ringing, token="first")
    post_callback(local, ringing, token="first")  # Twilio's retry of the same request
    local.post("/", data=ringing, headers={"X-Twilio-Signature": "forged"})
    local.post("/", data={"Nothing": "here"}, headers={"X-Twilio-Signature": "x"})
    rows = callbacks(local)
    assert [row["outcome"] for row in rows] == ["refused", "refused", "duplicate", "handled"]
    handled = rows[-1]
    assert handled["handler"].endswith("ringing")
    assert handled["verdict"] == "accepted (primary auth token)"
    assert (handled["channel"], handled["status"], handled["sid"]) == ("call", "ringing", ringing["CallSid"])
    assert rows[1]["verdict"].startswith("refused: Forbidden")
    detail = local.get(f"/console/api/callbacks/{handled['id']}").json()
    assert ["CallStatus", "ringing"] in detail["params"]
    assert detail["response_body"].endswith("<Response/>")
    assert detail["token"] == "first"
    assert callbacks(local)[0]["id"] == rows[0]["id"]
    assert local.get(f"/console/api/callbacks?since={rows[0]['changed']}").json()["callbacks"] == []


def test_failed_and_out_of_order_outcomes() -> None:
    app = TwilioEvents(auth_token=TOKEN, console=True, ordering="monotonic")

    @app.call.on_in_progress
    def broken(event: CallEvent) -> None:
        raise RuntimeError("boom")

    sid = call_payload("ringing")["CallSid"]
    with TestClient(app, base_url=HERE, client=LOOPBACK) as client:
        post_callback(client, dict(call_payload("completed", CallSid=sid, SequenceNumber="3")))
        post_callback(client, dict(call_payload("ringing", CallSid=sid, SequenceNumber="1")))
        other = dict(call_payload("in-progress"))
        assert post_callback(client, other).status_code == 500
        rows = callbacks(client)
    assert [(row["outcome"], row["handler"].rsplit(".", 1)[-1]) for row in rows] == [
        ("failed", "broken"),
        ("out-of-order", ""),
        ("acknowledged", ""),
    ]


def test_a_timeline_marks_late_and_repeated_arrivals(local: TestClient) -> None:
    sid = call_payload("ringing")["CallSid"]
    post_callback(local, dict(call_payload("initiated", CallSid=sid, SequenceNumber="0")), token="a")
    post_callback(local, dict(call_payload("in-progress", CallSid=sid, SequenceNumber="2")), token="b")
    post_callback(local, dict(call_payload("ringing", CallSid=sid, SequenceNumber="1")), token="c")
    post_callback(local, dict(call_payload("ringing", CallSid=sid, SequenceNumber="1")), token="c")
    post_callback(local, dict(recording_status_payload("completed", CallSid=sid)), token="d")
    post_callback(local, dict(call_payload("ringing")), token="e")  # another call
    timeline = local.get(f"/console/api/timeline/{sid}").json()["rows"]
    assert [(row["channel"], row["status"], row["marks"]) for row in timeline] == [
        ("call", "initiated", []),
        ("call", "in-progress", []),
        ("call", "ringing", ["out-of-order"]),
        ("call", "ringing", ["duplicate"]),
        ("recording", "completed", []),
    ]


def test_replay_signs_again_and_shows_the_new_outcome(local: TestClient) -> None:
    post_callback(local, dict(call_payload("completed")), token="original")
    first = callbacks(local)[0]
    fresh = local.post("/console/api/replay", json={"id": first["id"]}, headers=ACT).json()
    assert fresh["http_status"] == 200 and not fresh["same_token"] and fresh["token"] != "original"
    again = local.post("/console/api/replay", json={"id": first["id"], "same_token": True}, headers=ACT)
    assert again.json()["token"] == "original"
    rows = callbacks(local)
    assert [(row["outcome"], row["replay_of"]) for row in rows] == [
        ("duplicate", first["id"]),
        ("handled", first["id"]),
        ("handled", None),
    ]
    assert rows[1]["verdict"] == "accepted (primary auth token)"


def test_replay_reaches_an_app_mounted_below_a_path() -> None:
    app = TwilioEvents(auth_token=TOKEN, console=True, path="/twilio/")
    with TestClient(app, base_url=HERE, client=LOOPBACK) as client:
        assert client.get("/twilio/console/").status_code == 200
        post_callback(client, dict(call_payload("ringing")), path="/twilio")
        entry = client.get("/twilio/console/api/callbacks").json()["callbacks"][0]
        replayed = client.post("/twilio/console/api/replay", json={"id": entry["id"]}, headers=ACT)
        assert replayed.json()["http_status"] == 200


def test_the_durable_inbox_retries_and_purges_dead_letters(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'events.db'}"
    app = TwilioEvents(
        auth_token=TOKEN, console=True, delivery="durable", store=store, max_attempts=1, retry_delay=0.01
    )
    failures: list[str] = []

    @app.call.on_completed
    def completed(event: CallEvent) -> None:
        if len(failures) < 2:
            failures.append(event.call_sid)
            raise RuntimeError("the database is down")

    with TestClient(app, base_url=HERE, client=LOOPBACK) as client:
        assert client.get("/console/").text.count('data-durable="true"') == 1
        post_callback(client, dict(call_payload("completed")), token="one")
        post_callback(client, dict(call_payload("completed")), token="two")
        inbox = wait_for_inbox(client, lambda inbox: inbox["counts"]["dead"] == 2)
        assert [row["outcome"] for row in callbacks(client)] == ["dead letter", "dead letter"]
        assert inbox["dead"][0]["error"] == "RuntimeError: the database is down"
        retried = client.post("/console/api/inbox/retry", json={"id": inbox["dead"][0]["id"]}, headers=ACT)
        assert retried.json() == {"retried": 1}
        wait_for(
            lambda: sorted(row["outcome"] for row in callbacks(client)) == ["dead letter", "handled"],
            "the retried callback's row to say it was handled",
        )
        assert {row["handler"].rsplit(".", 1)[-1] for row in callbacks(client)} == {"completed"}
        assert client.get("/console/api/inbox").json()["counts"]["dead"] == 1
        assert client.post("/console/api/inbox/purge", json={}, headers=ACT).json() == {"purged": 1}
        assert client.get("/console/api/inbox").json()["dead"] == []


def test_the_inbox_is_for_durable_delivery(local: TestClient) -> None:
    assert local.get("/console/api/inbox").json() == {"durable": False}
    assert local.post("/console/api/inbox/purge", json={}, headers=ACT).status_code == 409


def wait_for_inbox(client: TestClient, condition: Any, timeout: float = 15.0) -> dict[str, Any]:
    """The inbox once `condition` holds for it; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        inbox: dict[str, Any] = client.get("/console/api/inbox").json()
        if condition(inbox):
            return inbox
        if time.monotonic() > deadline:
            pytest.fail(f"the inbox never got there: {inbox}")
        time.sleep(0.05)


def test_an_event_streams_batch_is_one_row_with_its_body(local: TestClient) -> None:
    ringing = call_status_cloudevent("ringing")
    sid = ringing["data"]["request"]["parameters"]["CallSid"]
    body = event_streams_body([ringing, call_status_cloudevent("completed")])
    url, signature = sign_event_streams(HERE + "/events", body, TOKEN)
    answer = local.post(
        url.removeprefix(HERE),
        content=body,
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )
    assert answer.status_code == 200
    row = callbacks(local)[0]
    assert (row["channel"], row["status"], row["outcome"]) == ("streams", "batch of 2", "handled")
    assert [entry["id"] for entry in local.get(f"/console/api/timeline/{sid}").json()["rows"]] == [row["id"]]
    detail = local.get(f"/console/api/callbacks/{row['id']}").json()
    assert detail["params"][0][0] == "(body)" and "com.twilio.voice" in detail["params"][0][1]
    assert not detail["replayable"]
    assert local.post("/console/api/replay", json={"id": row["id"]}, headers=ACT).status_code == 400

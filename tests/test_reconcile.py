"""Reconciliation: statuses Twilio's callbacks never delivered are recovered from the REST API, once.

Twilio's REST API is a real HTTP server on 127.0.0.1 (tests/fake_rest_api.py) that the app's own client
reaches through `api_base_url`; the app runs on real uvicorn servers, with real SQLite and Redis stores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from twilio_events import CallEvent, SmsEvent, TwilioEvents
from twilio_events.testing import (
    TEST_ACCOUNT_SID,
    call_payload,
    message_status_cloudevent,
    new_idempotency_token,
    sign_event_streams,
    sms_payload,
)
from twilio_events.testing import event_streams_body as streams_body

from .conftest import TOKEN, LiveServer, wait_for
from .delivery_support import redis_server
from .fake_rest_api import FakeRestApi, Scripted, fake_rest_api

AFTER = 0.3
"""reconcile_after in these tests: a status older than this is checked (a pass every AFTER / 4 s)."""


@pytest.fixture
def api() -> Iterator[FakeRestApi]:
    with fake_rest_api(TEST_ACCOUNT_SID, TOKEN) as server:
        yield server


class Handled:
    """What the handlers received, across every app of a test."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        with self.lock:
            self.events.append(event)

    def statuses(self) -> list[tuple[str, str, bool]]:
        with self.lock:
            return [(event.sid, str(event.status), event.recovered) for event in self.events]


def reconciling_app(api: FakeRestApi, handled: Handled, **config: Any) -> TwilioEvents:
    app = TwilioEvents(
        auth_token=TOKEN,
        account_sid=TEST_ACCOUNT_SID,
        api_base_url=api.base_url,
        reconcile_after=AFTER,
        **config,
    )
    for status in ("sent", "delivered", "undelivered"):
        app.sms.on(status)(handled)
    for status in ("ringing", "in-progress", "completed"):
        app.call.on(status)(handled)
    return app


def post(live: LiveServer, payload: dict[str, str]) -> int:
    return live.callback(payload, headers={"I-Twilio-Idempotency-Token": new_idempotency_token()}).status_code


def answers(live: LiveServer) -> bool:
    try:
        live.request("GET", "/health")
    except httpx2.TransportError:
        return False
    return True


def health(live: LiveServer) -> dict[str, Any]:
    response = live.request("GET", "/health")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def test_a_delivered_status_that_never_came_is_recovered_once(
    serve: Callable[..., LiveServer], api: FakeRestApi
) -> None:
    handled = Handled()
    live = serve(reconciling_app(api, handled), lifespan="on")
    sid = "SM" + "1" * 32
    api.add_message(sid, "delivered")

    assert post(live, sms_payload("sent", MessageSid=sid, SmsSid=sid)) == 200
    wait_for(lambda: len(handled.statuses()) == 2, "the recovered delivered status")

    assert handled.statuses() == [(sid, "sent", False), (sid, "delivered", True)]
    recovered = handled.events[1]
    assert isinstance(recovered, SmsEvent) and recovered.to == "+14155550100"
    assert recovered.previous_status == "sent"
    wait_for(lambda: health(live)["reconcile"] == {"waiting": 0, "recovered": 1}, "the SID to be let go")
    # The real callback, arriving late, runs nothing.
    assert post(live, sms_payload("delivered", MessageSid=sid, SmsSid=sid)) == 200
    time.sleep(AFTER)
    assert len(handled.statuses()) == 2
    assert api.fetches(sid) == 1


def test_a_call_stuck_in_progress_is_recovered_as_completed_with_its_duration(
    serve: Callable[..., LiveServer], api: FakeRestApi
) -> None:
    handled = Handled()
    live = serve(reconciling_app(api, handled), lifespan="on")
    sid = "CA" + "2" * 32
    api.add_call(sid, "completed", duration="61", answered_by="human")

    assert post(live, call_payload("in-progress", CallSid=sid, SequenceNumber="2")) == 200
    wait_for(lambda: len(handled.statuses()) == 2, "the recovered completed status")

    completed = handled.events[1]
    assert isinstance(completed, CallEvent)
    assert (completed.status, completed.call_duration, completed.recovered) == ("completed", 61, True)
    assert completed.answered_by == "human"


def test_a_call_twilio_still_reports_in_progress_is_left_waiting(
    serve: Callable[..., LiveServer], api: FakeRestApi
) -> None:
    handled = Handled()
    live = serve(reconciling_app(api, handled), lifespan="on")
    sid = "CA" + "3" * 32
    api.add_call(sid, "in-progress")

    assert post(live, call_payload("in-progress", CallSid=sid, SequenceNumber="2")) == 200
    wait_for(lambda: api.fetches(sid) >= 2, "two checks, a reconcile_after apart")

    assert handled.statuses() == [(sid, "in-progress", False)]
    assert health(live)["reconcile"]["waiting"] == 1


def test_a_429_and_a_5xx_are_retried_with_back_off(
    serve: Callable[..., LiveServer], api: FakeRestApi
) -> None:
    handled = Handled()
    live = serve(reconciling_app(api, handled), lifespan="on")
    sid = "SM" + "4" * 32
    api.add_message(sid, "undelivered", error_code=30003)
    api.script += [
        Scripted(status=429, code=20429, message="Too Many Requests"),
        Scripted(status=503, code=20503, message="Service Unavailable"),
    ]

    assert post(live, sms_payload("sent", MessageSid=sid, SmsSid=sid)) == 200
    wait_for(lambda: len(handled.statuses()) == 2, "the recovered status after the retries")

    assert handled.statuses()[1] == (sid, "undelivered", True)
    assert handled.events[1].error_code == 30003
    assert api.fetches(sid) == 3


def test_failures_of_the_api_never_turn_into_a_made_up_status(
    serve: Callable[..., LiveServer], api: FakeRestApi, caplog: pytest.LogCaptureFixture
) -> None:
    handled = Handled()
    live = serve(reconciling_app(api, handled), lifespan="on")
    sid = "SM" + "5" * 32
    api.script += [Scripted(status=500, code=20500, message="Internal Server Error")] * 12

    assert post(live, sms_payload("sent", MessageSid=sid, SmsSid=sid)) == 200
    wait_for(lambda: "could not check sms " + sid in caplog.text, "a pass to give up on the SID")

    assert handled.statuses() == [(sid, "sent", False)]
    assert health(live)["reconcile"]["waiting"] == 1
    assert "HTTP 500, error 20500" in caplog.text


def test_two_instances_on_one_redis_ask_the_api_once_and_deliver_once(
    serve: Callable[..., LiveServer], api: FakeRestApi, tmp_path: Path
) -> None:
    handled = Handled()
    with redis_server(tmp_path / "redis") as redis:
        first = serve(reconciling_app(api, handled, delivery="durable", store=redis.url), lifespan="on")
        serve(reconciling_app(api, handled, delivery="durable", store=redis.url), lifespan="on")
        sids = ["SM" + f"{n}" * 32 for n in range(6, 10)]
        for sid in sids:
            api.add_message(sid, "delivered")
            assert post(first, sms_payload("sent", MessageSid=sid, SmsSid=sid)) == 200

        wait_for(lambda: len(handled.statuses()) == 2 * len(sids), "every message's delivered status")
        time.sleep(3 * AFTER)

    recovered = sorted(sid for sid, status, was_recovered in handled.statuses() if was_recovered)
    assert recovered == sorted(sids)
    assert [api.fetches(sid) for sid in sids] == [1] * len(sids)


def test_an_instance_stopped_mid_pass_leaves_the_sid_to_another_that_delivers_it_once(
    serve: Callable[..., LiveServer], api: FakeRestApi, tmp_path: Path
) -> None:
    handled = Handled()
    sid = "SM" + "a" * 32
    api.add_message(sid, "delivered")
    with redis_server(tmp_path / "redis") as redis:
        config: dict[str, Any] = {"delivery": "durable", "store": redis.url}
        first = serve(reconciling_app(api, handled, **config), lifespan="on")
        api.script.append(Scripted(delay=1.5))  # the first check hangs while the instance stops
        assert post(first, sms_payload("sent", MessageSid=sid, SmsSid=sid)) == 200
        wait_for(lambda: api.fetches(sid) == 1, "the first instance's check to start")
        first.server.should_exit = True
        wait_for(lambda: not answers(first), "the first instance to stop")
        serve(reconciling_app(api, handled, **config), lifespan="on")

        wait_for(lambda: len(handled.statuses()) == 2, "the delivered status, from the second instance")
        time.sleep(2.5)  # longer than a lease: nothing runs again

    assert handled.statuses() == [(sid, "sent", False), (sid, "delivered", True)]


@pytest.mark.parametrize(("by_status", "expected_runs"), [(True, 1), (False, 2)])
def test_one_status_from_a_callback_and_from_event_streams_runs_once_when_deduped_by_status(
    serve: Callable[..., LiveServer], api: FakeRestApi, by_status: bool, expected_runs: int
) -> None:
    handled = Handled()
    app = TwilioEvents(auth_token=TOKEN, dedupe_by_status=by_status)
    app.sms.on_delivered(handled)
    live = serve(app)
    sid = "SM" + "b" * 32

    assert post(live, sms_payload("delivered", MessageSid=sid, SmsSid=sid)) == 200
    body = streams_body([message_status_cloudevent("delivered", message_sid=sid)])
    url, signature = sign_event_streams(live.url("/events"), body, TOKEN)
    streamed = live.http.post(
        url, content=body, headers={"Content-Type": "application/json", "X-Twilio-Signature": signature}
    )

    assert streamed.status_code == 200
    assert len(handled.statuses()) == expected_runs


def test_metrics_count_what_waits_and_what_was_recovered(
    serve: Callable[..., LiveServer], api: FakeRestApi
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    handled = Handled()
    live = serve(reconciling_app(api, handled, metrics=True), lifespan="on")
    delivered, stuck = "SM" + "7" * 32, "CA" + "8" * 32
    api.add_message(delivered, "delivered")
    api.add_call(stuck, "in-progress")

    assert post(live, sms_payload("sent", MessageSid=delivered, SmsSid=delivered)) == 200
    assert post(live, call_payload("in-progress", CallSid=stuck, SequenceNumber="2")) == 200
    wait_for(lambda: len(handled.statuses()) == 3, "the recovered delivered status")

    def sample(name: str, **labels: str) -> float:
        text = live.request("GET", "/metrics").text
        return next(
            (
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == name and s.labels == labels
            ),
            0.0,
        )

    # counted once the dispatcher has the delivery's answer, just after the handler ran
    recovered = "twilio_events_reconcile_recovered_total"
    wait_for(lambda: sample(recovered, channel="sms") == 1, "the recovery to be counted")
    assert sample("twilio_events_reconcile_recovered_total", channel="call") == 0
    assert sample("twilio_events_reconcile_waiting") == 1  # the call Twilio still reports in progress

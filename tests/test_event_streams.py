"""Twilio Event Streams: a webhook sink's CloudEvents reach the same handlers as the classic callbacks,
over a real uvicorn server, signed as Twilio signs a JSON body (twilio's RequestValidator: `bodySHA256` in
the URL, the URL signed), inline and durable (a real SQLite file)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from twilio_events import CallEvent, SmsEvent, TwilioEvents
from twilio_events.events import StreamEvent
from twilio_events.kinds import RequestKind, recognise
from twilio_events.streams import NotCloudEvents, parse_batch
from twilio_events.testing import (
    call_status_cloudevent,
    cloudevent,
    event_streams_body,
    inbound_message_cloudevent,
    message_status_cloudevent,
    sign_event_streams,
)

from .conftest import TOKEN, LiveServer, wait_for

# The example of Twilio's "Outbound Message Delivered" event type page (values as published).
DOCUMENTED_DELIVERED = {
    "specversion": "1.0",
    "type": "com.twilio.messaging.message.delivered",
    "source": "AB00000000000000000000000001",
    "id": "NO00000000000000000000000001",
    "dataschema": "https://events-schemas.twilio.com/Messaging.MessageStatus/8",
    "datacontenttype": "2025-10-08T07:17:02.363Z",
    "data": {
        "messageSid": "SM0000000000000000000000000000001",
        "timestamp": "2025-01-01T00:00:00.000Z",
        "accountSid": "AC0000000000000000000000000000001",
        "eventName": "com.twilio.messaging.message.delivered",
        "apiVersion": "2010-04-01",
        "from": "+15017122661",
        "to": "+15558675310",
        "messageStatus": "DELIVERED",
        "messagingServiceSid": "MG0000000000000000000000000000001",
        "numberOfSegments": 1,
    },
}


class Seen:
    """Every event a handler received, by handler name."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def add(self, name: str) -> Callable[[Any], None]:
        def handler(event: Any) -> None:
            with self.lock:
                self.events.append((name, event))

        return handler

    def names(self) -> list[str]:
        with self.lock:
            return sorted(name for name, _ in self.events)

    def of(self, name: str) -> list[Any]:
        with self.lock:
            return [event for seen, event in self.events if seen == name]


def streams_app(seen: Seen, **config: Any) -> TwilioEvents:
    app = TwilioEvents(auth_token=TOKEN, **config)
    app.sms.on_delivered(seen.add("sms.delivered"))
    app.sms.on_sent(seen.add("sms.sent"))
    app.sms.on_received(seen.add("sms.received"))
    app.call.on_completed(seen.add("call.completed"))
    app.streams.on("com.twilio.voice.insights.call-summary.complete")(seen.add("streams.call-summary"))
    app.streams.on_any(seen.add("streams.any"))
    return app


def post_batch(
    live: LiveServer,
    events: list[dict[str, Any]],
    path: str = "/events",
    *,
    token: str = TOKEN,
    body: bytes | None = None,
    signature: str | None = None,
    content_type: str = "application/json",
) -> Any:
    signed_body = event_streams_body(events)
    url, expected = sign_event_streams(live.url(path), signed_body, token)
    headers = {"Content-Type": content_type, "X-Twilio-Signature": signature or expected}
    return live.http.post(url, content=body if body is not None else signed_body, headers=headers)


# --- the mapping, as plain function calls ----------------------------------------------------------------


def test_the_documented_delivered_event_becomes_a_message_status_callback() -> None:
    [event] = parse_batch(json.dumps([DOCUMENTED_DELIVERED]).encode())
    params = dict(event.params())

    assert params["MessageSid"] == params["SmsSid"] == "SM0000000000000000000000000000001"
    assert params["MessageStatus"] == params["SmsStatus"] == "delivered"
    assert params["AccountSid"] == "AC0000000000000000000000000000001"
    assert (params["From"], params["To"]) == ("+15017122661", "+15558675310")
    assert params["NumSegments"] == "1"
    assert params["CloudEventId"] == "NO00000000000000000000000001"
    recognised = recognise(params)
    assert (recognised.kind, recognised.channel, recognised.status) == (
        RequestKind.MESSAGE_STATUS,
        "sms",
        "delivered",
    )
    assert recognised.key == "cloudevent:NO00000000000000000000000001"


def test_a_voice_event_carries_the_classic_callbacks_form() -> None:
    event = call_status_cloudevent("ringing", CallbackSource=None, SequenceNumber=None, CallSid="CA1")
    [parsed] = parse_batch(json.dumps(event).encode())  # one event, as a sink without batching sends it

    recognised = recognise(dict(parsed.params()))

    assert event["type"] == "com.twilio.voice.status-callback.call.ringing"
    assert (recognised.kind, recognised.sid, recognised.status) == (RequestKind.CALL_STATUS, "CA1", "ringing")
    assert recognised.key == f"cloudevent:{event['id']}", "streamed: never answered, keyed by its id"


def test_snake_case_parameters_are_named_as_twilio_posts_them() -> None:
    event = cloudevent(
        "com.twilio.voice.status-callback.call.completed",
        {"request": {"parameters": {"call_sid": "CA9", "call_status": "completed", "account_sid": "AC1"}}},
    )
    params = dict(parse_batch(json.dumps([event]).encode())[0].params())

    assert (params["CallSid"], params["CallStatus"], params["AccountSid"]) == ("CA9", "completed", "AC1")


def test_an_unknown_type_keeps_its_data_for_app_streams() -> None:
    event = cloudevent("com.twilio.voice.insights.call-summary.complete", {"callSid": "CA1", "duration": 3})
    recognised = recognise(dict(parse_batch(json.dumps([event]).encode())[0].params()))

    assert (recognised.kind, recognised.channel, recognised.route) == (
        RequestKind.STREAM_EVENT,
        "streams",
        "com.twilio.voice.insights.call-summary.complete",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b"[]", "no event"),
        (b"[1]", "not a JSON object"),
        (b'[{"specversion": "1.0", "type": "x"}]', "lacks the CloudEvents attribute(s) id, source"),
    ],
)
def test_a_body_that_is_not_cloudevents_is_named(body: bytes, message: str) -> None:
    with pytest.raises(NotCloudEvents, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_batch(body)


# --- over HTTP ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_a_batch_reaches_the_same_handlers_as_the_classic_callbacks(
    serve: Callable[..., LiveServer], tmp_path: Path, delivery: str
) -> None:
    seen = Seen()
    config: dict[str, Any] = {"delivery": delivery}
    if delivery == "durable":
        config["store"] = f"sqlite:///{tmp_path / 'events.db'}"
    live = serve(streams_app(seen, **config))
    sid = "SM" + "a" * 32
    batch = [
        message_status_cloudevent("sent", message_sid=sid),
        message_status_cloudevent("delivered", message_sid=sid),
        inbound_message_cloudevent("hello"),
        call_status_cloudevent("completed", CallSid="CA" + "b" * 32),
        cloudevent("com.twilio.voice.insights.call-summary.complete", {"callSid": "CA" + "b" * 32}),
        cloudevent("com.twilio.eventstreams.test-event", {"test_id": "cae2f9e2"}),
    ]

    response = post_batch(live, batch)

    assert response.status_code == 200, response.text
    expected = sorted(
        ["sms.sent", "sms.delivered", "sms.received", "call.completed", "streams.call-summary", "streams.any"]
    )
    wait_for(lambda: seen.names() == expected, f"every event's handler: {seen.names()}")
    [delivered] = seen.of("sms.delivered")
    assert isinstance(delivered, SmsEvent)
    assert (delivered.message_sid, delivered.status, delivered.to) == (sid, "delivered", "+14155550100")
    assert delivered.cloudevent_id == batch[1]["id"]
    assert delivered.cloudevent_type == "com.twilio.messaging.message.delivered"
    assert delivered.cloudevent_time is not None
    assert delivered.idempotency_key == f"cloudevent:{batch[1]['id']}"
    [completed] = seen.of("call.completed")
    assert isinstance(completed, CallEvent) and completed.call_duration == 42
    [received] = seen.of("sms.received")
    assert received.body == "hello"
    [summary] = seen.of("streams.call-summary")
    assert isinstance(summary, StreamEvent) and summary.data["callSid"] == "CA" + "b" * 32
    [test_event] = seen.of("streams.any")
    assert test_event.type == "com.twilio.eventstreams.test-event"


@pytest.mark.parametrize("delivery", ["inline", "durable"])
def test_a_batch_delivered_twice_runs_each_event_once(
    serve: Callable[..., LiveServer], tmp_path: Path, delivery: str
) -> None:
    seen = Seen()
    config: dict[str, Any] = {"delivery": delivery}
    if delivery == "durable":
        config["store"] = f"sqlite:///{tmp_path / 'events.db'}"
    live = serve(streams_app(seen, **config))
    batch = [message_status_cloudevent("delivered"), message_status_cloudevent("delivered")]

    assert post_batch(live, batch).status_code == 200
    assert post_batch(live, batch).status_code == 200
    assert post_batch(live, batch[1:]).status_code == 200

    wait_for(lambda: len(seen.of("sms.delivered")) == 2, "both events")
    assert sorted(event.cloudevent_id for event in seen.of("sms.delivered")) == sorted(e["id"] for e in batch)


def test_a_forged_unsigned_or_tampered_batch_is_refused(serve: Callable[..., LiveServer]) -> None:
    seen = Seen()
    live = serve(streams_app(seen))
    batch = [message_status_cloudevent("delivered")]

    forged = post_batch(live, batch, token="not-the-token")
    unsigned = live.http.post(
        live.url("/events"), content=event_streams_body(batch), headers={"Content-Type": "application/json"}
    )
    tampered_body = event_streams_body([message_status_cloudevent("delivered")])
    tampered = post_batch(live, batch, body=tampered_body)

    assert forged.status_code == 403
    assert unsigned.status_code == 403 and "header is missing" in unsigned.text
    assert tampered.status_code == 403 and "bodySHA256" in tampered.text
    assert seen.names() == []


def test_a_batch_signed_over_the_url_and_the_body_is_accepted(serve: Callable[..., LiveServer]) -> None:
    # Without bodySHA256 in the URL, the signed string is the URL followed by the raw body.
    seen = Seen()
    live = serve(streams_app(seen))
    body = event_streams_body([message_status_cloudevent("delivered")])
    url = live.url("/events")
    signature = base64.b64encode(hmac.digest(TOKEN.encode(), url.encode() + body, hashlib.sha1)).decode()

    accepted = live.http.post(
        url, content=body, headers={"Content-Type": "application/json", "X-Twilio-Signature": signature}
    )
    refused = live.http.post(
        url,
        content=body + b" ",
        headers={"Content-Type": "application/json", "X-Twilio-Signature": signature},
    )

    assert accepted.status_code == 200
    assert refused.status_code == 403
    wait_for(lambda: seen.names() == ["sms.delivered"], "the one event")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        ("application/x-www-form-urlencoded", None, 415, "an Event Streams sink posts application/json"),
        ("application/json", b"{not json", 400, "not an Event Streams batch of CloudEvents"),
    ],
)
def test_what_is_not_a_batch_of_cloudevents_is_refused_with_its_reason(
    serve: Callable[..., LiveServer], content_type: str, body: bytes | None, status: int, message: str
) -> None:
    seen = Seen()
    live = serve(streams_app(seen))
    events = [message_status_cloudevent("delivered")]
    if body is not None:
        url, signature = sign_event_streams(live.url("/events"), body, TOKEN)
        response = live.http.post(
            url, content=body, headers={"Content-Type": content_type, "X-Twilio-Signature": signature}
        )
    else:
        response = post_batch(live, events, content_type=content_type)

    assert response.status_code == status
    assert message in response.text
    assert "Traceback" not in response.text
    assert seen.names() == []


def test_event_streams_can_be_turned_off_and_moved(serve: Callable[..., LiveServer]) -> None:
    seen = Seen()
    off = serve(streams_app(seen, event_streams_path=None))
    moved = serve(streams_app(seen, path="/twilio", event_streams_path="sink"))
    batch = [message_status_cloudevent("delivered")]

    assert post_batch(off, batch).status_code == 404
    assert post_batch(moved, batch, "/twilio/sink").status_code == 200
    wait_for(lambda: seen.names() == ["sms.delivered"], "the moved sink's event")


def test_a_subaccount_batch_is_checked_with_that_accounts_token(serve: Callable[..., LiveServer]) -> None:
    first, second = "AC" + "1" * 32, "AC" + "2" * 32
    seen = Seen()
    app = TwilioEvents(auth_token={first: "first-token", second: "second-token"})
    app.sms.on_delivered(seen.add("sms.delivered"))
    live = serve(app)
    mine = [message_status_cloudevent("delivered", accountSid=second)]

    assert post_batch(live, mine, token="second-token").status_code == 200
    assert post_batch(live, mine, token="first-token").status_code == 403
    wait_for(lambda: seen.names() == ["sms.delivered"], "the subaccount's event")


def test_the_test_client_sends_event_streams_batches() -> None:
    from twilio_events.testing import TwilioTestClient

    seen = Seen()
    with TwilioTestClient(streams_app(seen)) as client:
        response = client.event_streams([message_status_cloudevent("sent")])

    assert response.status_code == 200
    assert seen.names() == ["sms.sent"]

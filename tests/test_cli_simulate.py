"""`twilio-events simulate`: the real console script against a real `twilio-events run` on 127.0.0.1.

The served app writes every event its handlers receive to a file, so each test sees what really ran.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from twilio_events import TwilioEvents

from .conftest import DEADLINE, TOKEN, LiveServer, Process, free_port, wait_for

SCRIPT = Path(sys.executable).with_name("twilio-events")

RECORDING_APP = """
import json
import os

from twilio.twiml.messaging_response import MessagingResponse

from twilio_events import TwilioEvents

app = TwilioEvents()


def record(event, handler):
    seen = {"handler": handler, "status": str(event.status), "sid": event.sid, "from": event.from_,
            "to": event.to, "account_sid": event.account_sid, "error_code": event.error_code}
    if handler == "call_status":
        seen |= {"sequence_number": event.sequence_number, "timestamp": event.raw.get("Timestamp"),
                 "call_duration": event.call_duration, "sip_response_code": event.sip_response_code}
    else:
        seen |= {"body": event.body, "media": [[m.url, m.content_type] for m in event.media],
                 "inbound": event.is_inbound, "messaging_service_sid": event.messaging_service_sid}
    with open(os.environ["EVENTS_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(seen) + "\\n")


@app.call.on_any
def call_status(event):
    record(event, "call_status")


@app.sms.on_received
def incoming(event):
    record(event, "incoming")
    reply = MessagingResponse()
    reply.message(f"You said: {event.body}")
    return reply


@app.sms.on_any
def message_status(event):
    record(event, "message_status")
"""

Events = Callable[[], list[dict[str, Any]]]


class Service:
    """`twilio-events run` serving the recording app on a free port."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = workdir / "events.jsonl"
        (workdir / "app.py").write_text(RECORDING_APP, encoding="utf-8")
        env = {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": "",
            "TWILIO_EVENTS_VALIDATE_SIGNATURE": "",
            "EVENTS_LOG": str(self.log),
        }
        args = ["-m", "twilio_events", "run", "app.py", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = Process(args, workdir, env)
        wait_for(self._accepting, f"`twilio-events run` on port {self.port}")

    def _accepting(self) -> bool:
        if self.process.popen.poll() is not None:
            pytest.fail(f"`twilio-events run` exited:\n{self.process.stderr}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def events(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("service"))
    try:
        yield running
    finally:
        running.process.terminate()
        try:
            running.process.popen.wait(DEADLINE)
        finally:
            running.process.kill()


@pytest.fixture
def events(service: Service) -> Events:
    """What the handlers received during this test."""
    service.log.write_text("", encoding="utf-8")
    return service.events


def simulate(
    service: Service | None, *args: str, token: str | None = TOKEN
) -> subprocess.CompletedProcess[str]:
    """Run `twilio-events simulate ARGS --url <service>` and return what it printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}
    if token is not None:
        env["TWILIO_AUTH_TOKEN"] = token
    url = ["--url", service.url] if service else []
    return subprocess.run(
        [str(SCRIPT), "simulate", *args, *url], env=env, capture_output=True, text=True, timeout=DEADLINE * 2
    )


def answered(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The status of each answer simulate printed, e.g. ["200 OK", "200 OK"]."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("[")]
    return [line.split(" -> ", 1)[1].split(" in ", 1)[0] for line in lines]


def test_one_call_status(service: Service, events: Events) -> None:
    result = simulate(service, "call", "--status", "ringing")

    assert result.returncode == 0, result.stdout + result.stderr
    assert answered(result) == ["200 OK"]
    [seen] = events()
    assert (seen["handler"], seen["status"]) == ("call_status", "ringing")
    assert seen["sid"].startswith("CA") and seen["sid"] in result.stdout


def test_a_call_lifecycle_is_one_call_in_order(service: Service, events: Events) -> None:
    result = simulate(service, "call", "--lifecycle")

    assert result.returncode == 0, result.stdout + result.stderr
    assert answered(result) == ["200 OK"] * 4
    seen = events()
    assert [e["status"] for e in seen] == ["initiated", "ringing", "in-progress", "completed"]
    assert len({e["sid"] for e in seen}) == 1
    assert [e["sequence_number"] for e in seen] == [0, 1, 2, 3]
    times = [parsedate_to_datetime(e["timestamp"]) for e in seen]
    assert times == sorted(times) and len(set(times)) == 4
    assert [e["call_duration"] for e in seen] == [None, None, None, 42]
    assert (times[-1] - times[2]).total_seconds() == 42  # answered to hung up


@pytest.mark.parametrize(
    ("outcome", "statuses", "sip"),
    [
        ("busy", ["initiated", "ringing", "busy"], 486),
        ("no-answer", ["initiated", "ringing", "no-answer"], 487),
        ("canceled", ["initiated", "ringing", "canceled"], 487),
        ("failed", ["initiated", "failed"], 404),
    ],
)
def test_a_call_lifecycle_with_another_ending(
    service: Service, events: Events, outcome: str, statuses: list[str], sip: int
) -> None:
    result = simulate(service, "call", "--lifecycle", "--outcome", outcome)

    assert result.returncode == 0, result.stdout + result.stderr
    seen = events()
    assert [e["status"] for e in seen] == statuses
    assert [e["sequence_number"] for e in seen] == list(range(len(statuses)))
    assert (seen[-1]["call_duration"], seen[-1]["sip_response_code"]) == (0, sip)


def test_one_message_status(service: Service, events: Events) -> None:
    result = simulate(service, "sms", "--status", "delivered")

    assert result.returncode == 0, result.stdout + result.stderr
    [seen] = events()
    assert (seen["handler"], seen["status"], seen["inbound"]) == ("message_status", "delivered", False)


@pytest.mark.parametrize(
    ("outcome", "statuses", "error_code"),
    [
        ("delivered", ["queued", "sent", "delivered"], None),
        ("undelivered", ["queued", "sent", "undelivered"], 30003),
        ("failed", ["queued", "failed"], 30008),
    ],
)
def test_a_message_lifecycle(
    service: Service, events: Events, outcome: str, statuses: list[str], error_code: int | None
) -> None:
    args = ["sms", "--lifecycle"] + (["--outcome", outcome] if outcome != "delivered" else [])
    result = simulate(service, *args)

    assert result.returncode == 0, result.stdout + result.stderr
    seen = events()
    assert [e["status"] for e in seen] == statuses
    assert len({e["sid"] for e in seen}) == len({e["messaging_service_sid"] for e in seen}) == 1
    assert [e["error_code"] for e in seen] == [None] * (len(statuses) - 1) + [error_code]


def test_an_inbound_message_shows_the_twiml_reply(service: Service, events: Events) -> None:
    result = simulate(
        service,
        "inbound-sms",
        "--body",
        "hi there",
        "--media",
        "https://example.com/cat.png",
        "--media",
        "https://example.com/clip.mp4",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    [seen] = events()
    assert (seen["handler"], seen["body"], seen["inbound"]) == ("incoming", "hi there", True)
    assert seen["media"] == [
        ["https://example.com/cat.png", "image/png"],
        ["https://example.com/clip.mp4", "video/mp4"],
    ]
    assert "<Message>You said: hi there</Message>" in result.stdout


def test_out_of_order_shuffles_the_lifecycle(service: Service, events: Events) -> None:
    result = simulate(service, "call", "--lifecycle", "--out-of-order", "--seed", "7")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "--seed 7" in result.stdout
    seen = events()
    order = ["initiated", "ringing", "in-progress", "completed"]
    assert sorted(e["status"] for e in seen) == sorted(order)
    assert [e["status"] for e in seen] != order
    assert all(e["sequence_number"] == order.index(e["status"]) for e in seen)  # each keeps its number
    assert len({e["sid"] for e in seen}) == 1


def test_the_same_seed_replays_the_same_order(service: Service, events: Events) -> None:
    first = simulate(service, "sms", "--lifecycle", "--out-of-order", "--duplicate", "--seed", "3")
    statuses_first = [e["status"] for e in events()]
    second = simulate(service, "sms", "--lifecycle", "--out-of-order", "--duplicate", "--seed", "3")

    assert first.returncode == second.returncode == 0
    assert [e["status"] for e in events()][len(statuses_first) :] == statuses_first


def test_duplicates_are_sent_acknowledged_and_handled_once(service: Service, events: Events) -> None:
    result = simulate(service, "call", "--lifecycle", "--duplicate", "--seed", "1")

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("(repeat)") >= 1  # some callbacks really were sent twice
    seen = events()
    keys = [(e["status"], e["sequence_number"]) for e in seen]
    assert len(keys) == len(set(keys)) == 4  # the service ran each handler once


def test_parameters_can_be_set(service: Service, events: Events) -> None:
    account = "AC" + "f" * 32
    result = simulate(
        service,
        "sms",
        "--status",
        "sent",
        "--account-sid",
        account,
        "--from",
        "+15550001111",
        "--to",
        "+15550002222",
        "--param",
        "ErrorCode=30001",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    [seen] = events()
    assert (seen["account_sid"], seen["from"], seen["to"], seen["error_code"]) == (
        account,
        "+15550001111",
        "+15550002222",
        30001,
    )


def test_a_wrong_token_is_refused_with_403_and_said_clearly(service: Service, events: Events) -> None:
    result = simulate(service, "call", "--lifecycle", token="not-the-service-token")

    assert result.returncode == 1
    assert answered(result) == ["403 Forbidden"] * 4
    assert "X-Twilio-Signature does not match" in result.stdout
    assert "--auth-token / TWILIO_AUTH_TOKEN" in result.stdout
    assert events() == []


def assert_one_line_error(result: subprocess.CompletedProcess[str], text: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and text in lines[0], result.stderr


def test_an_unreachable_url_is_one_clear_line() -> None:
    result = simulate(None, "call", "--status", "ringing", "--url", f"http://127.0.0.1:{free_port()}/")

    assert_one_line_error(result, "connection refused. Is the service running?")


def test_wait_gives_up_with_one_clear_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    result = simulate(None, "sms", "--status", "sent", "--url", url, "--wait", "0.3")

    assert_one_line_error(result, "nothing accepted a connection within 0.3 s")


def test_without_a_token_it_says_so_and_the_validating_service_refuses(
    service: Service, events: Events
) -> None:
    result = simulate(service, "call", "--status", "ringing", token=None)

    assert result.returncode == 1
    assert "no auth token (--auth-token / TWILIO_AUTH_TOKEN)" in result.stderr
    assert answered(result) == ["403 Forbidden"]
    assert events() == []


def test_lifecycle_options_need_lifecycle(service: Service) -> None:
    result = simulate(service, "call", "--status", "ringing", "--out-of-order")

    assert_one_line_error(result, "--out-of-order goes with --lifecycle")


def test_help_for_each_kind_has_examples() -> None:
    for kind in ("call", "sms", "inbound-sms"):
        result = simulate(None, kind, "--help")
        assert result.returncode == 0
        assert "examples:" in result.stdout and f"twilio-events simulate {kind}" in result.stdout
        assert "TWILIO_AUTH_TOKEN" in result.stdout and "--public-url" in result.stdout


# I-Twilio-Idempotency-Token, seen by a plain ASGI app that records every request's headers and form


class HeaderRecorder:
    """An ASGI app that answers every POST with empty TwiML and keeps its headers and parameters."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, str]]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]
        }
        self.requests.append((headers, dict(parse_qsl(body.decode("utf-8")))))
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/xml")]}
        )
        await send({"type": "http.response.body", "body": b"<Response/>"})

    def tokens(self) -> list[str | None]:
        """The I-Twilio-Idempotency-Token of each request, in arrival order (None: no such header)."""
        return [headers.get("i-twilio-idempotency-token") for headers, _ in self.requests]

    def callbacks(self) -> list[tuple[str, str, str]]:
        """Each request's CallSid, CallStatus and SequenceNumber: which callback it carried."""
        return [(form["CallSid"], form["CallStatus"], form["SequenceNumber"]) for _, form in self.requests]


@pytest.fixture
def recorder(serve: Callable[..., LiveServer]) -> tuple[HeaderRecorder, str]:
    app = HeaderRecorder()
    return app, serve(app).url("/")


def simulate_to(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`twilio-events simulate ARGS --url URL`, which must be answered 2xx throughout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")} | {"TWILIO_AUTH_TOKEN": TOKEN}
    result = subprocess.run(
        [str(SCRIPT), "simulate", *args, "--url", url],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_every_callback_carries_a_fresh_idempotency_token(recorder: tuple[HeaderRecorder, str]) -> None:
    app, url = recorder

    simulate_to(url, "call", "--lifecycle")
    simulate_to(url, "call", "--status", "ringing")

    tokens = app.tokens()
    assert len(tokens) == 5 and None not in tokens
    assert len(set(tokens)) == 5  # one per request, and none reused by the next run
    assert all(str(uuid.UUID(str(token))) == token for token in tokens)


def test_a_duplicate_repeats_the_token_of_its_first_delivery(recorder: tuple[HeaderRecorder, str]) -> None:
    app, url = recorder

    result = simulate_to(url, "call", "--lifecycle", "--duplicate", "--out-of-order", "--seed", "5")

    assert result.stdout.count("(repeat)") >= 1
    token_of: dict[tuple[str, str, str], str | None] = {}
    for callback, token in zip(app.callbacks(), app.tokens(), strict=True):
        assert token is not None
        assert token_of.setdefault(callback, token) == token  # a repeat: the same token
    assert len(app.requests) > len(token_of) == len(set(token_of.values())) == 4


def test_no_idempotency_token_leaves_the_header_out(recorder: tuple[HeaderRecorder, str]) -> None:
    app, url = recorder

    simulate_to(url, "call", "--lifecycle", "--duplicate", "--no-idempotency-token")

    assert len(app.requests) > 4
    assert app.tokens() == [None] * len(app.requests)


def test_verbose_shows_the_token_sent(recorder: tuple[HeaderRecorder, str]) -> None:
    app, url = recorder

    result = simulate_to(url, "sms", "--status", "sent", "-v")

    [token] = app.tokens()
    assert f"I-Twilio-Idempotency-Token: {token}" in result.stdout


def test_a_redirect_says_which_url_to_send_to(serve: Callable[..., LiveServer]) -> None:
    events = TwilioEvents(auth_token=TOKEN)
    handled: list[str] = []
    events.call.on_any(lambda event: handled.append(str(event.status)))
    server = serve(Starlette(routes=[Mount("/twilio", app=events)]))  # served at /twilio/

    result = simulate(None, "call", "--lifecycle", "--url", server.url("/twilio"))

    assert result.returncode == 1
    assert answered(result) == ["307 Temporary Redirect"] * 4
    assert handled == []
    assert f"--url {server.url('/twilio/')}" in result.stdout  # what to change
    simulate_to(server.url("/twilio/"), "call", "--lifecycle")
    assert handled == ["initiated", "ringing", "in-progress", "completed"]

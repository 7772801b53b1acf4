"""`twilio-events configure`: the real console script against a fake Twilio REST API on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import assert_one_line_error

ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "fake-auth-token"
NUMBER = "+15551234567"
NUMBER_SID = "PN" + "2" * 32
PUBLIC_URL = "https://abc.ngrok.app/"
SCRIPT = Path(sys.executable).with_name("twilio-events")
TIMEOUT = 30

_FIELDS = {
    "SmsUrl": "sms_url",
    "SmsMethod": "sms_method",
    "StatusCallback": "status_callback",
    "StatusCallbackMethod": "status_callback_method",
    "VoiceUrl": "voice_url",
    "VoiceMethod": "voice_method",
}


class FakeTwilio(ThreadingHTTPServer):
    """The IncomingPhoneNumbers part of Twilio's REST API, with Basic auth, as JSON over real HTTP."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FakeTwilioHandler)
        self.numbers: dict[str, dict[str, Any]] = {
            NUMBER_SID: {
                "sid": NUMBER_SID,
                "account_sid": ACCOUNT_SID,
                "phone_number": NUMBER,
                "friendly_name": "(555) 123-4567",
                "sms_url": "https://demo.twilio.com/welcome/sms/reply",
                "sms_method": "GET",
                "status_callback": "",
                "status_callback_method": "POST",
                "voice_url": "https://demo.twilio.com/welcome/voice/",
                "voice_method": "POST",
                "sms_application_sid": "",
                "voice_application_sid": "",
            }
        }
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        self.sinks: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.subscribed: dict[str, list[str]] = {}
        """Each subscription's SID -> the event types it takes."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _FakeTwilioHandler(BaseHTTPRequestHandler):
    server: FakeTwilio

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        form = parse_qs(self.rfile.read(length).decode()) if length else {}
        self.server.requests.append((method, self.path, form))
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._error(401, 20003, "Authenticate")
        if parts.path.startswith("/v1/"):  # events.twilio.com/v1/..., rebased by the client
            return _EventsApi(self).handle(method, parts.path, parse_qs(parts.query), form)
        prefix = f"/2010-04-01/Accounts/{ACCOUNT_SID}/IncomingPhoneNumbers"
        if method == "GET" and parts.path == prefix + ".json":
            wanted = parse_qs(parts.query).get("PhoneNumber", [None])[0]
            numbers = [n for n in self.server.numbers.values() if wanted in (None, n["phone_number"])]
            return self._json(
                200,
                {
                    "incoming_phone_numbers": numbers,
                    "next_page_uri": None,
                    "page": 0,
                    "page_size": 50,
                    "start": 0,
                    "end": len(numbers) - 1,
                    "uri": self.path,
                },
            )
        sid = parts.path.removeprefix(prefix + "/").removesuffix(".json")
        if not parts.path.startswith(prefix + "/") or sid not in self.server.numbers:
            return self._error(404, 20404, f"The requested resource {parts.path} was not found")
        number = self.server.numbers[sid]
        if method == "POST":
            for name, values in form.items():
                number[_FIELDS[name]] = values[0]
        return self._json(200, number)

    def _error(self, status: int, code: int, message: str) -> None:
        body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}"}
        self._json(status, body | {"status": status})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _EventsApi:
    """Sinks, Subscriptions and SubscribedEvents of events v1, as Twilio's API answers them."""

    def __init__(self, handler: _FakeTwilioHandler) -> None:
        self.handler = handler
        self.api = handler.server

    def handle(self, method: str, path: str, query: dict[str, list[str]], form: dict[str, list[str]]) -> None:
        api, parts = self.api, path.strip("/").split("/")
        if parts == ["v1", "Sinks"] and method == "GET":
            return self._page("sinks", list(api.sinks.values()), path)
        if parts == ["v1", "Sinks"]:
            sid = f"DG{len(api.sinks) + 1:032x}"
            configuration = json.loads(form["SinkConfiguration"][0])
            api.sinks[sid] = {
                "sid": sid,
                "description": form["Description"][0],
                "sink_type": form["SinkType"][0],
                "sink_configuration": configuration,
                "status": "initialized",
                "url": f"https://events.twilio.com/v1/Sinks/{sid}",
            }
            return self.handler._json(201, api.sinks[sid])
        if parts == ["v1", "Subscriptions"] and method == "GET":
            wanted = query.get("SinkSid", [None])[0]
            found = [s for s in api.subscriptions.values() if wanted in (None, s["sink_sid"])]
            return self._page("subscriptions", found, path)
        if parts == ["v1", "Subscriptions"]:
            if form["SinkSid"][0] not in api.sinks:
                return self.handler._error(400, 20001, "Sink not found")
            sid = f"DF{len(api.subscriptions) + 1:032x}"
            api.subscriptions[sid] = {
                "sid": sid,
                "account_sid": ACCOUNT_SID,
                "description": form["Description"][0],
                "sink_sid": form["SinkSid"][0],
            }
            api.subscribed[sid] = [json.loads(item)["type"] for item in form["Types"]]
            return self.handler._json(201, api.subscriptions[sid])
        if len(parts) == 4 and parts[1] == "Subscriptions" and parts[3] == "SubscribedEvents":
            sid = parts[2]
            if method == "POST":
                api.subscribed[sid].append(form["Type"][0])
                return self.handler._json(201, {"type": form["Type"][0], "subscription_sid": sid})
            events = [
                {"type": name, "schema_version": 1, "subscription_sid": sid} for name in api.subscribed[sid]
            ]
            return self._page("types", events, path)
        return self.handler._error(404, 20404, f"The requested resource {path} was not found")

    def _page(self, key: str, items: list[dict[str, Any]], path: str) -> None:
        meta = {"key": key, "page": 0, "page_size": 50, "next_page_url": None, "url": path}
        return self.handler._json(200, {key: items, "meta": meta})


@pytest.fixture
def twilio_api() -> Iterator[FakeTwilio]:
    server = FakeTwilio()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=TIMEOUT)


def configure(
    *args: str, api: FakeTwilio | None, token: str = AUTH_TOKEN, account: str = ACCOUNT_SID
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_") and "proxy" not in k.lower()}
    env |= {"TWILIO_ACCOUNT_SID": account, "TWILIO_AUTH_TOKEN": token, "NO_PROXY": "127.0.0.1,localhost"}
    if api is not None:
        env["TWILIO_EVENTS_API_BASE_URL"] = api.base_url
    return subprocess.run(
        [str(SCRIPT), "configure", *args], env=env, capture_output=True, text=True, timeout=TIMEOUT
    )


def updates(api: FakeTwilio) -> list[dict[str, list[str]]]:
    return [form for method, _, form in api.requests if method == "POST"]


def test_sets_the_sms_url_and_shows_before_and_after(twilio_api: FakeTwilio) -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, api=twilio_api)

    assert result.returncode == 0, result.stderr
    number = twilio_api.numbers[NUMBER_SID]
    assert (number["sms_url"], number["sms_method"]) == (PUBLIC_URL, "POST")
    assert number["status_callback"] == ""  # voice untouched without --voice
    assert updates(twilio_api) == [{"SmsUrl": [PUBLIC_URL], "SmsMethod": ["POST"]}]
    sms_row = next(line for line in result.stdout.splitlines() if "(SmsUrl)" in line)
    assert "https://demo.twilio.com/welcome/sms/reply" in sms_row and sms_row.rstrip().endswith(PUBLIC_URL)
    method_row = next(line for line in result.stdout.splitlines() if "(SmsMethod)" in line)
    assert method_row.split()[-2:] == ["GET", "POST"]
    assert "updated 2 field(s)" in result.stdout


def test_voice_sets_the_call_status_callback(twilio_api: FakeTwilio) -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, "--voice", api=twilio_api)

    assert result.returncode == 0, result.stderr
    number = twilio_api.numbers[NUMBER_SID]
    assert (number["status_callback"], number["status_callback_method"]) == (PUBLIC_URL, "POST")
    assert number["sms_url"] == "https://demo.twilio.com/welcome/sms/reply"  # only --voice was asked
    assert updates(twilio_api) == [{"StatusCallback": [PUBLIC_URL]}]  # the method was already POST
    assert "(StatusCallback)" in result.stdout and "(SmsUrl)" not in result.stdout


def test_incoming_call_sets_the_voice_url_with_the_status_callback(twilio_api: FakeTwilio) -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, "--incoming-call", "--voice", api=twilio_api)

    assert result.returncode == 0, result.stderr
    number = twilio_api.numbers[NUMBER_SID]
    assert (number["voice_url"], number["voice_method"]) == (PUBLIC_URL, "POST")
    assert number["status_callback"] == PUBLIC_URL
    assert number["sms_url"] == "https://demo.twilio.com/welcome/sms/reply"  # no --sms
    assert '"A CALL COMES IN"' in result.stdout and "(VoiceUrl)" in result.stdout


def test_sms_and_voice_together_and_a_url_without_a_path(twilio_api: FakeTwilio) -> None:
    result = configure(
        "--number", NUMBER, "--url", "https://abc.ngrok.app", "--sms", "--voice", api=twilio_api
    )

    assert result.returncode == 0, result.stderr
    number = twilio_api.numbers[NUMBER_SID]
    assert number["sms_url"] == number["status_callback"] == PUBLIC_URL  # "/" added: Twilio signs it


def test_dry_run_changes_nothing(twilio_api: FakeTwilio) -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, "--dry-run", api=twilio_api)

    assert result.returncode == 0, result.stderr
    assert updates(twilio_api) == []
    assert twilio_api.numbers[NUMBER_SID]["sms_url"] == "https://demo.twilio.com/welcome/sms/reply"
    assert "WOULD BE" in result.stdout and "dry run: nothing was changed" in result.stdout
    assert (
        next(line for line in result.stdout.splitlines() if "(SmsUrl)" in line).rstrip().endswith(PUBLIC_URL)
    )


def test_running_twice_has_nothing_to_change(twilio_api: FakeTwilio) -> None:
    assert configure("--number", NUMBER, "--url", PUBLIC_URL, api=twilio_api).returncode == 0
    again = configure("--number", NUMBER, "--url", PUBLIC_URL, api=twilio_api)

    assert again.returncode == 0, again.stderr
    assert len(updates(twilio_api)) == 1
    assert "nothing to change" in again.stdout


def test_a_number_sid_is_accepted(twilio_api: FakeTwilio) -> None:
    result = configure("--number", NUMBER_SID, "--url", PUBLIC_URL, api=twilio_api)

    assert result.returncode == 0, result.stderr
    assert twilio_api.numbers[NUMBER_SID]["sms_url"] == PUBLIC_URL


def test_a_twiml_app_on_the_number_is_pointed_out(twilio_api: FakeTwilio) -> None:
    twilio_api.numbers[NUMBER_SID]["sms_application_sid"] = "AP" + "3" * 32

    result = configure("--number", NUMBER, "--url", PUBLIC_URL, api=twilio_api)

    assert result.returncode == 0, result.stderr
    assert f"handled by TwiML App AP{'3' * 32}" in result.stdout


def test_bad_credentials_are_one_clear_line(twilio_api: FakeTwilio) -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, api=twilio_api, token="wrong")

    assert_one_line_error(result, "HTTP 401", "error 20003", "Authenticate", "TWILIO_AUTH_TOKEN")
    assert updates(twilio_api) == []


def test_an_unknown_number_is_one_clear_line(twilio_api: FakeTwilio) -> None:
    result = configure("--number", "+15550000000", "--url", PUBLIC_URL, api=twilio_api)

    assert_one_line_error(result, "+15550000000 is not a phone number of account " + ACCOUNT_SID)
    assert updates(twilio_api) == []


def test_an_unknown_number_sid_is_twilios_404(twilio_api: FakeTwilio) -> None:
    result = configure("--number", "PN" + "9" * 32, "--url", PUBLIC_URL, api=twilio_api)

    assert_one_line_error(result, "HTTP 404", "error 20404")


def test_an_unreachable_api_is_one_clear_line(twilio_api: FakeTwilio) -> None:
    twilio_api.server_close()  # nothing listens on its port any more

    assert_one_line_error(
        configure("--number", NUMBER, "--url", PUBLIC_URL, api=twilio_api), "cannot reach the Twilio API"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--number", NUMBER, "--url", "http://127.0.0.1:8090/"],
            "Twilio cannot reach http://127.0.0.1:8090/",
        ),
        (["--number", NUMBER, "--url", "abc.ngrok.app"], "--url must be an http(s) URL"),
        (["--number", "5551234567", "--url", PUBLIC_URL], "E.164"),
        (["--url", PUBLIC_URL], "--number"),
    ],
)
def test_mistakes_are_refused_before_any_change(
    twilio_api: FakeTwilio, args: list[str], message: str
) -> None:
    assert_one_line_error(configure(*args, api=twilio_api), message)
    assert updates(twilio_api) == []


def test_an_account_sid_that_is_not_one_is_refused_as_the_app_refuses_it() -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, api=None, account="AC123", token="t")

    assert_one_line_error(result, "'AC123' is not a Twilio account SID: it is AC followed by 32 hex digits")


def test_missing_credentials_are_named() -> None:
    result = configure("--number", NUMBER, "--url", PUBLIC_URL, api=None, account="", token="")

    assert_one_line_error(result, "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN")


def test_help_shows_examples_and_environment() -> None:
    result = configure("--help", api=None)

    assert result.returncode == 0
    for text in ("examples:", "--dry-run", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "--voice"):
        assert text in result.stdout


# --event-streams: a webhook sink for <url>events and its subscription, on events.twilio.com/v1

SINK_URL = PUBLIC_URL + "events"
STATUS_TYPES = [
    *(
        f"com.twilio.messaging.message.{s}"
        for s in ("queued", "sent", "delivered", "undelivered", "failed", "read")
    ),
    "com.twilio.messaging.inbound-message.received",
    *(
        f"com.twilio.voice.status-callback.call.{e}"
        for e in ("initiated", "ringing", "answered", "completed")
    ),
]


def posts(api: FakeTwilio) -> list[tuple[str, dict[str, list[str]]]]:
    return [(path, form) for method, path, form in api.requests if method == "POST"]


def test_event_streams_creates_a_sink_and_its_subscription(twilio_api: FakeTwilio) -> None:
    result = configure("--event-streams", "--url", PUBLIC_URL, api=twilio_api)

    assert result.returncode == 0, result.stderr
    [sink] = twilio_api.sinks.values()
    assert sink["sink_type"] == "webhook"
    assert sink["sink_configuration"] == {"destination": SINK_URL, "method": "POST", "batch_events": True}
    [subscription] = twilio_api.subscriptions.values()
    assert subscription["sink_sid"] == sink["sid"]
    assert twilio_api.subscribed[subscription["sid"]] == STATUS_TYPES
    assert [path for path, _ in posts(twilio_api)] == [
        "/v1/Sinks",
        "/v1/Subscriptions",
    ]  # as the SDK sends them
    assert (
        twilio_api.numbers[NUMBER_SID]["sms_url"] == "https://demo.twilio.com/welcome/sms/reply"
    )  # untouched
    out = result.stdout
    assert f"Event Streams of account {ACCOUNT_SID}" in out
    assert f"{sink['sid']}" in out and f"POST {SINK_URL}" in out and out.count("created") >= 2
    rows = [line.split() for line in out.splitlines()]
    assert all([name, "added"] in rows for name in STATUS_TYPES)
    assert "subscribed 11 event type(s)" in out


def test_event_streams_run_again_reuses_the_sink_and_changes_nothing(twilio_api: FakeTwilio) -> None:
    assert configure("--event-streams", "--url", PUBLIC_URL, api=twilio_api).returncode == 0
    again = configure("--event-streams", "--url", "https://abc.ngrok.app", api=twilio_api)  # same URL, no "/"

    assert again.returncode == 0, again.stderr
    assert len(twilio_api.sinks) == len(twilio_api.subscriptions) == 1
    assert len(posts(twilio_api)) == 2  # the first run's only
    assert "found, reused" in again.stdout and "nothing to change" in again.stdout


def test_event_streams_completes_a_subscription_that_lacks_types(twilio_api: FakeTwilio) -> None:
    twilio_api.sinks["DG" + "a" * 32] = {
        "sid": "DG" + "a" * 32,
        "description": "mine",
        "sink_type": "webhook",
        "sink_configuration": {"destination": SINK_URL, "method": "POST"},
        "status": "active",
    }
    twilio_api.subscriptions["DF" + "b" * 32] = {
        "sid": "DF" + "b" * 32,
        "description": "mine",
        "sink_sid": "DG" + "a" * 32,
    }
    twilio_api.subscribed["DF" + "b" * 32] = ["com.twilio.messaging.message.delivered"]

    result = configure("--event-streams", "--url", PUBLIC_URL, api=twilio_api)

    assert result.returncode == 0, result.stderr
    assert len(twilio_api.sinks) == len(twilio_api.subscriptions) == 1
    assert sorted(twilio_api.subscribed["DF" + "b" * 32]) == sorted(STATUS_TYPES)
    assert {path for path, _ in posts(twilio_api)} == {f"/v1/Subscriptions/DF{'b' * 32}/SubscribedEvents"}
    assert "already subscribed" in result.stdout and "subscribed 10 event type(s)" in result.stdout


def test_event_streams_dry_run_changes_nothing(twilio_api: FakeTwilio) -> None:
    result = configure("--event-streams", "--url", PUBLIC_URL, "--dry-run", api=twilio_api)

    assert result.returncode == 0, result.stderr
    assert posts(twilio_api) == [] and twilio_api.sinks == {} and twilio_api.subscriptions == {}
    assert [method for method, _, _ in twilio_api.requests] == ["GET"]  # it looked for a sink
    assert "would be created" in result.stdout and "would be added" in result.stdout
    assert "dry run: nothing was changed (11 event type(s) would be subscribed)" in result.stdout


def test_event_streams_with_another_sink_path_and_a_number(twilio_api: FakeTwilio) -> None:
    result = configure(
        "--event-streams",
        "--sink-path",
        "/hooks/sink",
        "--number",
        NUMBER,
        "--url",
        PUBLIC_URL,
        api=twilio_api,
    )

    assert result.returncode == 0, result.stderr
    [sink] = twilio_api.sinks.values()
    assert sink["sink_configuration"]["destination"] == PUBLIC_URL + "hooks/sink"
    assert twilio_api.numbers[NUMBER_SID]["sms_url"] == PUBLIC_URL  # --number set as well


def test_event_streams_bad_credentials_are_one_clear_line(twilio_api: FakeTwilio) -> None:
    result = configure("--event-streams", "--url", PUBLIC_URL, api=twilio_api, token="wrong")

    assert_one_line_error(result, "HTTP 401", "error 20003", "TWILIO_AUTH_TOKEN")
    assert posts(twilio_api) == []


def test_event_streams_refuses_a_local_url_before_any_request(twilio_api: FakeTwilio) -> None:
    result = configure("--event-streams", "--url", "http://127.0.0.1:8090/", api=twilio_api)

    assert_one_line_error(result, "Twilio cannot reach http://127.0.0.1:8090/")
    assert twilio_api.requests == []

"""The examples and `make run`, for real: served on a free local port, sent callbacks signed like Twilio."""

from __future__ import annotations

import contextlib
import itertools
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx2 as httpx
import pytest

from twilio_events import CallStatus, SmsStatus
from twilio_events.testing import (
    amd_payload,
    call_payload,
    conference_with_two_participants,
    gather_payload,
    inbound_sms_payload,
    incoming_call_payload,
    record_action_payload,
    recorded_call,
    recording_status_payload,
    sign,
    sms_payload,
)

from .conftest import free_port, wait_for

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "examples-test-token"
TIMEOUT = 20.0
"""Seconds to wait for a server, a response or a line of output before failing (never asserted on)."""
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
ACCOUNT_SID = "AC" + "7" * 32


def _outside_env() -> dict[str, str]:
    """This process's environment without any Twilio or port setting of the developer's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")}


class Example:
    """An example running in its own process group, its output (stdout and stderr) going to a file."""

    def __init__(self, command: list[str], port: int, env: Mapping[str, str], log: Path) -> None:
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env={**_outside_env(), **env},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # one signal stops make, its shell and Python together
            )
        self.http = httpx.Client(base_url=self.base_url, timeout=TIMEOUT)

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_until_listening(self) -> None:
        def listening() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"the example exited ({self.process.returncode}):\n{self.output}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.settimeout(1)
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        wait_for(listening, f"the example to listen on port {self.port}", TIMEOUT)

    def wait_for_output(self, text: str) -> None:
        wait_for(lambda: text in self.output, f"{text!r} in the example's output:\n{self.output}", TIMEOUT)

    def callback(
        self, payload: Mapping[str, str], path: str = "/", *, signed_path: str | None = None
    ) -> httpx.Response:
        """POST `payload` form-encoded with the X-Twilio-Signature Twilio would send for `signed_path`."""
        signature = sign(self.base_url + (signed_path or path), payload, TOKEN)
        return self.http.post(path, data=dict(payload), headers={"X-Twilio-Signature": signature})

    def stop(self) -> None:
        """SIGTERM the whole process group (make, its shell, Python), then SIGKILL if it lingers."""
        self.http.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(TIMEOUT)


@contextlib.contextmanager
def running(command: list[str], log: Path, env: Mapping[str, str] | None = None) -> Iterator[Example]:
    """Start `command` (which must serve on the port given as {port} or in TWILIO_EVENTS_PORT) and stop
    it afterwards."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    example = Example(command, port, {"TWILIO_EVENTS_PORT": str(port), **(env or {})}, log)
    try:
        example.wait_until_listening()
        yield example
    finally:
        example.stop()


def uvicorn_command(target: str) -> list[str]:
    return [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "{port}"]


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("example-logs")


@pytest.fixture(scope="module")
def call_status(logs: Path) -> Iterator[Example]:
    command = uvicorn_command("examples.call_status:app")
    with running(command, logs / "call_status.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        yield example


@pytest.fixture(scope="module")
def message_status(logs: Path) -> Iterator[Example]:
    command = uvicorn_command("examples.message_status:app")
    with running(command, logs / "message_status.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        yield example


@pytest.fixture(scope="module")
def inbound_sms(logs: Path) -> Iterator[Example]:
    command = uvicorn_command("examples.inbound_sms:app")
    with running(command, logs / "inbound_sms.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        yield example


@pytest.fixture(scope="module")
def mounted_fastapi(logs: Path) -> Iterator[Example]:
    command = uvicorn_command("examples.mounted_fastapi:app")
    with running(command, logs / "mounted_fastapi.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        yield example


def assert_acknowledged(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == EMPTY_TWIML


# call_status.py


@pytest.mark.parametrize(
    ("status", "printed"),
    [
        (CallStatus.QUEUED, "queued, outbound-api call"),
        (CallStatus.INITIATED, "initiated, outbound-api call"),
        (CallStatus.RINGING, "ringing"),
        (CallStatus.IN_PROGRESS, "answered"),
        (CallStatus.COMPLETED, "completed after 42 s"),
        (CallStatus.BUSY, "not connected: busy (SIP 487)"),
        (CallStatus.NO_ANSWER, "not connected: no-answer (SIP 487)"),
        (CallStatus.FAILED, "not connected: failed (SIP 487)"),
        (CallStatus.CANCELED, "not connected: canceled (SIP 487)"),
    ],
)
def test_call_status_prints_a_line_per_status(call_status: Example, status: CallStatus, printed: str) -> None:
    payload = call_payload(status)
    assert_acknowledged(call_status.callback(payload))
    call_status.wait_for_output(f"{payload['CallSid']} {payload['From']} -> {payload['To']}: {printed}\n")


def test_call_status_refuses_unsigned_callbacks(call_status: Example) -> None:
    payload = call_payload(CallStatus.RINGING)
    unsigned = call_status.http.post("/", data=payload)
    forged = call_status.http.post("/", data=payload, headers={"X-Twilio-Signature": "forged"})
    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert payload["CallSid"] not in call_status.output


def test_call_status_script_serves_on_its_named_listener(tmp_path: Path) -> None:
    command = [sys.executable, "examples/call_status.py"]
    with running(command, tmp_path / "out.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        example.wait_for_output(f"[twilioListener] receiving Twilio callbacks at {example.base_url}/")
        payload = call_payload(CallStatus.RINGING)
        assert_acknowledged(example.callback(payload))
        example.wait_for_output(f"[twilioListener] call ringing {payload['CallSid']} -> on_ringing()")
        assert "validation is OFF" not in example.output


# message_status.py


@pytest.mark.parametrize(
    ("status", "printed"),
    [
        (SmsStatus.DELIVERED, "delivered to {To}"),
        (SmsStatus.UNDELIVERED, "to {To} undelivered: error 30003"),
        (SmsStatus.FAILED, "to {To} failed: error 30008"),
        (SmsStatus.ACCEPTED, "is accepted"),
        (SmsStatus.QUEUED, "is queued"),
        (SmsStatus.SENT, "is sent"),
    ],
)
def test_message_status_prints_a_line_per_status(
    message_status: Example, status: SmsStatus, printed: str
) -> None:
    payload = sms_payload(status)
    assert_acknowledged(message_status.callback(payload))
    message_status.wait_for_output(f"{payload['MessageSid']} {printed.format(**payload)}\n")


# inbound_sms.py


def test_inbound_sms_replies_with_twiml(inbound_sms: Example) -> None:
    payload = inbound_sms_payload(body="Hi there", media=["https://api.twilio.com/media/ME1"])
    response = inbound_sms.callback(payload)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    messages = ET.fromstring(response.text).findall("Message")
    assert [m.text for m in messages] == ['Thanks, we got your message: "Hi there" and 1 attachment(s)']


def test_inbound_sms_does_not_answer_a_status_callback(inbound_sms: Example) -> None:
    assert_acknowledged(inbound_sms.callback(sms_payload(SmsStatus.RECEIVED)))


# ivr.py


@pytest.fixture(scope="module")
def ivr(logs: Path) -> Iterator[Example]:
    command = uvicorn_command("examples.ivr:app")
    with running(command, logs / "ivr.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        yield example


def test_ivr_answers_a_call_through_its_menu_to_a_voicemail(ivr: Example) -> None:
    sid = "CA" + "5" * 32
    voicemail = record_action_payload(CallSid=sid, RecordingDuration="12")
    incoming = ivr.callback(incoming_call_payload(CallSid=sid))
    wrong_key = ivr.callback(gather_payload("7", CallSid=sid))
    message = ivr.callback(gather_payload("2", CallSid=sid))
    recorded = ivr.callback(voicemail)
    ended = ivr.callback(call_payload(CallStatus.COMPLETED, CallSid=sid, CallDuration="40"))

    assert [r.status_code for r in (incoming, wrong_key, message, recorded, ended)] == [200] * 5
    menu = ET.fromstring(incoming.text).find("Gather/Say")
    assert menu is not None and (menu.text or "").startswith("Press 1")
    assert "7 is not an option" in wrong_key.text
    assert ET.fromstring(message.text).find("Record") is not None
    assert "Thank you. Goodbye." in recorded.text
    assert_acknowledged(ended)
    ivr.wait_for_output(f"{sid}: ended after 40 s\n")
    assert [line for line in ivr.output.splitlines() if line.startswith(sid)] == [
        f"{sid}: +14155550100 is calling",
        f"{sid}: pressed 7",
        f"{sid}: pressed 2",
        f"{sid}: voicemail of 12 s at {voicemail['RecordingUrl']}",
        f"{sid}: ended after 40 s",
    ]


# mounted_fastapi.py


def test_mounted_fastapi_serves_its_own_routes_beside_twilio(mounted_fastapi: Example) -> None:
    assert mounted_fastapi.http.get("/health").json() == {"status": "ok"}
    assert mounted_fastapi.http.get("/calls/CAunknown").status_code == 404

    payload = call_payload(CallStatus.IN_PROGRESS)
    assert_acknowledged(mounted_fastapi.callback(payload, "/twilio/"))
    sid = payload["CallSid"]
    assert mounted_fastapi.http.get(f"/calls/{sid}").json() == {"call_sid": sid, "status": "in-progress"}


def test_mounted_fastapi_signature_covers_the_mount_path(mounted_fastapi: Example) -> None:
    payload = call_payload(CallStatus.RINGING)
    response = mounted_fastapi.callback(payload, "/twilio/", signed_path="/")
    assert response.status_code == 403
    assert mounted_fastapi.http.get(f"/calls/{payload['CallSid']}").status_code == 404


# make run


def try_it(example: Example) -> tuple[list[str], list[str]]:
    """The start-up summary's Try-it block: its `curl` line and its `twilio-events simulate` line."""
    example.wait_for_output("Try it")
    lines = [line.strip() for line in example.output.splitlines()]
    curl = [line for line in lines if line.startswith("curl ")]
    simulate = [shlex.split(line) for line in lines if " simulate " in line and not line.startswith("curl")]
    assert len(curl) == len(simulate) == 1, example.output
    # runnable as printed: the bare name on PATH, else the script's own path
    script = Path(sys.executable).with_name("twilio-events")
    assert simulate[0][0] == "twilio-events" or Path(simulate[0][0]).resolve() == script.resolve()
    return shlex.split(curl[0]), ["twilio-events", *simulate[0][1:]]


def form_of(curl: list[str]) -> dict[str, str]:
    """The parameters the `curl` line sends."""
    form: dict[str, str] = {}
    for flag, value in itertools.pairwise(curl):
        if flag == "--data-urlencode":
            name, _, data_value = value.partition("=")
            form[name] = data_value
    return form


def send_like_curl(args: list[str]) -> httpx.Response:
    """What the printed `curl` line sends, sent with httpx (so the check does not depend on curl)."""
    url = next(arg for arg in args if arg.startswith("http://"))
    headers: dict[str, str] = {}
    for flag, value in itertools.pairwise(args):
        if flag == "-H":
            name, _, header_value = value.partition(":")
            headers[name] = header_value.strip()  # as curl sends it
    with httpx.Client(timeout=TIMEOUT) as client:
        return client.post(url, data=form_of(args), headers=headers)


def run_curl(args: list[str]) -> str:
    """Run the printed `curl` line itself; its stdout (the response body)."""
    result = subprocess.run(
        [*args, "--silent", "--show-error", "--fail", "--max-time", str(TIMEOUT)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    return result.stdout


def run_simulate(args: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the printed `twilio-events simulate` line with this venv's script, in a terminal with `env`."""
    assert args[0] == "twilio-events"
    script = Path(sys.executable).with_name("twilio-events")
    return subprocess.run(
        [str(script), *args[1:]],
        env={**_outside_env(), **env},
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )


MAKE_RUN = ["make", "--no-print-directory", "-o", ".venv/.installed-stamp", "run"]
"""`make run` without re-running the install step (`-o`: treat the venv stamp as up to date)."""

HAVE_CURL = shutil.which("curl") is not None


def make_run(
    tmp_path: Path, env: Mapping[str, str] | None = None
) -> contextlib.AbstractContextManager[Example]:
    """`make run` on a free port, given as TWILIO_EVENTS_PORT."""
    return running(MAKE_RUN, tmp_path / "out.log", env)


def assert_handled_ringing(example: Example, curl: list[str]) -> None:
    form = form_of(curl)
    assert (form["CallStatus"], form["From"], form["To"]) == ("ringing", "+14155550100", "+14155550199")
    example.wait_for_output(f"{form['CallSid']} +14155550100 -> +14155550199: ringing\n")


def test_make_run_without_a_token_starts_for_local_use(tmp_path: Path) -> None:
    with make_run(tmp_path) as example:
        example.wait_for_output("receiving Twilio callbacks")
        assert "TWILIO_AUTH_TOKEN is not set" in example.output
        assert "twilio-events run examples/call_status.py --console --no-validate-signature" in example.output
        assert "X-Twilio-Signature validation is OFF" in example.output
        assert example.output.count("validation is OFF") == 1  # once, loudly
        curl, simulate = try_it(example)
        url = f"http://127.0.0.1:{example.port}/"
        assert f"Live console (this machine only): {url}console/" in example.output
        assert curl[:4] == ["curl", "-X", "POST", url]
        assert not any(arg.startswith("X-Twilio-Signature") for arg in curl)  # unsigned
        assert "AccountSid" not in form_of(curl)

        assert_acknowledged(send_like_curl(curl))
        if HAVE_CURL:
            assert run_curl(curl) == EMPTY_TWIML
        assert_handled_ringing(example, curl)

        assert simulate == ["twilio-events", "simulate", "call", "--lifecycle", "--url", url]
        result = run_simulate(simulate, {})
        assert result.returncode == 0, result.stdout + result.stderr
        example.wait_for_output(": completed after 42 s\n")


def test_make_run_on_a_port_in_use_says_how_to_choose_another() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            MAKE_RUN,
            cwd=ROOT,
            env={**_outside_env(), "TWILIO_EVENTS_PORT": str(port)},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT * 2,
        )

    assert result.returncode != 0, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("twilio-events: error: ")]
    assert len(errors) == 1, result.stderr
    # `make run` passes no --port: the variable it reads must be named
    assert f"port {port} is already in use" in errors[0] and "TWILIO_EVENTS_PORT" in errors[0]


@pytest.mark.parametrize("account_sid", [None, ACCOUNT_SID])
def test_make_run_with_a_token_prints_a_signed_curl_line(tmp_path: Path, account_sid: str | None) -> None:
    env = {"TWILIO_AUTH_TOKEN": TOKEN} | ({"TWILIO_ACCOUNT_SID": account_sid} if account_sid else {})
    with make_run(tmp_path, env) as example:
        example.wait_for_output("receiving Twilio callbacks")
        assert "TWILIO_AUTH_TOKEN is not set" not in example.output
        assert "validation is OFF" not in example.output
        curl, simulate = try_it(example)
        url = f"http://127.0.0.1:{example.port}/"
        assert curl[:4] == ["curl", "-X", "POST", url]
        assert form_of(curl).get("AccountSid") == account_sid  # without it, the app would refuse it
        assert simulate == ["twilio-events", "simulate", "call", "--lifecycle", "--url", url] + (
            ["--account-sid", account_sid] if account_sid else []
        )
        assert TOKEN not in example.output  # a signature, never the token itself

        assert_acknowledged(send_like_curl(curl))
        if HAVE_CURL:
            assert run_curl(curl) == EMPTY_TWIML
        assert_handled_ringing(example, curl)
        signature = next(i for i, arg in enumerate(curl) if arg.startswith("X-Twilio-Signature:"))
        unsigned = curl[: signature - 1] + curl[signature + 1 :]  # without -H X-Twilio-Signature:...
        assert curl[signature - 1] == "-H" and len(unsigned) == len(curl) - 2
        assert send_like_curl(unsigned).status_code == 403
        result = run_simulate(simulate, env)  # the other terminal has the same settings
        assert result.returncode == 0, result.stdout + result.stderr
        assert run_simulate(simulate, {"TWILIO_AUTH_TOKEN": "another-token"}).returncode == 1


# recordings_and_conferences.py


@pytest.fixture(scope="module")
def recordings_and_conferences(logs: Path) -> Iterator[Example]:
    command = uvicorn_command("examples.recordings_and_conferences:app")
    with running(command, logs / "recordings_and_conferences.log", {"TWILIO_AUTH_TOKEN": TOKEN}) as example:
        yield example


def test_recordings_and_conferences_prints_a_recorded_call_and_a_conference(
    recordings_and_conferences: Example,
) -> None:
    call = recorded_call(text="Call me at five.")
    room = conference_with_two_participants(friendly_name="standup")

    for payload in [*call, *room, amd_payload("machine_end_beep", MachineDetectionDuration="3100")]:
        assert_acknowledged(recordings_and_conferences.callback(payload))

    recording = call[-2]
    for line in (
        f"{recording['RecordingSid']} ready: 19 s at {recording['RecordingUrl']}",
        f"voicemail from {call[-1]['From']}: Call me at five.",
        "standup: agent participant-join",
        "standup: customer participant-join",
        "standup: customer participant-leave",
        "standup: agent participant-leave",
        "standup ended: participant-with-end-conference-on-exit-left",
        "answered by a machine (3100 ms)",
    ):
        recordings_and_conferences.wait_for_output(line + "\n")


def test_recordings_and_conferences_reports_a_missing_recording(recordings_and_conferences: Example) -> None:
    payload = recording_status_payload("absent", ErrorCode="16101", RecordingDuration=None)
    assert_acknowledged(recordings_and_conferences.callback(payload))
    recordings_and_conferences.wait_for_output(f"{payload['RecordingSid']} absent: error 16101\n")

"""`twilio-events simulate` for the voice channels, an IVR and Event Streams: the real console script
against a real `twilio-events run` on 127.0.0.1, whose handlers write every event they get to a file."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import DEADLINE, TOKEN, Process, free_port, wait_for
from .test_cli_simulate import SCRIPT, answered

ACCOUNT = "AC" + "7" * 32

CHANNELS_APP = """
import json
import os

from twilio.twiml.voice_response import VoiceResponse

from twilio_events import TwilioEvents

app = TwilioEvents()


def record(handler, event, **more):
    seen = {"handler": handler, "status": str(event.status), "sid": event.sid,
            "account_sid": event.account_sid, "streamed": event.cloudevent_id is not None, **more}
    with open(os.environ["EVENTS_LOG"], "a", encoding="utf-8") as log:
        log.write(json.dumps(seen) + "\\n")


@app.call.on_any
def call_status(event):
    record("call", event, sequence_number=event.sequence_number, recording_sid=event.raw.get("RecordingSid"))


@app.call.on_incoming
def incoming(event):
    record("incoming", event, direction=event.direction)
    answer = VoiceResponse()
    answer.gather(num_digits=1, action="/").say("Press 1 for sales, 2 for support.")
    return answer


@app.call.on_gather
def gathered(event):
    record("gather", event, digits=event.digits, speech=event.speech_result)
    answer = VoiceResponse()
    answer.say(f"You chose {event.digits or event.speech_result}. Goodbye.")
    answer.hangup()
    return answer


@app.sms.on_any
def message_status(event):
    record("sms", event)


@app.recording.on_any
def recording(event):
    record("recording", event, call_sid=event.call_sid, duration=event.recording_duration)


@app.transcription.on_any
def transcription(event):
    record("transcription", event, text=event.transcription_text, recording_sid=event.recording_sid,
           call_sid=event.raw.get("CallSid"))


@app.conference.on_any
def conference(event):
    record("conference", event, call_sid=event.call_sid, sequence_number=event.sequence_number,
           name=event.friendly_name)


@app.amd.on_any
def amd(event):
    record("amd", event, call_sid=event.call_sid)


@app.streams.on_any
def streamed(event):
    record("streams", event, type=event.cloudevent_type)
"""


class Service:
    """`twilio-events run` serving the channels app on a free port, with or without an account SID."""

    def __init__(self, workdir: Path, account_sid: str = "") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = workdir / "events.jsonl"
        (workdir / "app.py").write_text(CHANNELS_APP, encoding="utf-8")
        env = {
            "TWILIO_AUTH_TOKEN": TOKEN,
            "TWILIO_ACCOUNT_SID": account_sid,
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
        """What the handlers received since the last call, and empty the log."""
        if not self.log.exists():
            return []
        seen = [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines()]
        self.log.write_text("", encoding="utf-8")
        return seen

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.popen.wait(DEADLINE)
        finally:
            self.process.kill()


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    running = Service(tmp_path_factory.mktemp("channels"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh(service: Service) -> Service:
    service.events()  # forget what earlier tests sent
    return service


def simulate(service: Service, *args: str, token: str = TOKEN) -> subprocess.CompletedProcess[str]:
    """`twilio-events simulate ARGS --url <service>`, which must be answered 2xx throughout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")} | {"TWILIO_AUTH_TOKEN": token}
    result = subprocess.run(
        [str(SCRIPT), "simulate", *args, "--url", service.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_a_recording_is_in_progress_then_completed(fresh: Service) -> None:
    result = simulate(fresh, "recording")

    assert answered(result) == ["200 OK"] * 2
    seen = fresh.events()
    assert [(e["handler"], e["status"]) for e in seen] == [
        ("recording", "in-progress"),
        ("recording", "completed"),
    ]
    assert len({e["sid"] for e in seen}) == len({e["call_sid"] for e in seen}) == 1
    assert seen[0]["sid"].startswith("RE") and seen[-1]["duration"] == 9
    assert f"recording in-progress {seen[0]['sid']} of {seen[0]['call_sid']}" in result.stdout


def test_a_recording_that_ends_otherwise(fresh: Service) -> None:
    simulate(fresh, "recording", "--outcome", "absent")

    assert [e["status"] for e in fresh.events()] == ["in-progress", "absent"]


def test_a_transcription(fresh: Service) -> None:
    result = simulate(fresh, "transcription", "--text", "Call me at five", "--from", "+15550001111")

    [seen] = fresh.events()
    assert (seen["handler"], seen["status"], seen["text"]) == (
        "transcription",
        "completed",
        "Call me at five",
    )
    assert seen["sid"].startswith("TR") and seen["recording_sid"].startswith("RE")
    assert "'Call me at five'" in result.stdout


def test_a_failed_transcription_has_no_text(fresh: Service) -> None:
    simulate(fresh, "transcription", "--status", "failed")

    [seen] = fresh.events()
    assert (seen["status"], seen["text"]) == ("failed", None)


def test_a_conference_with_two_participants(fresh: Service) -> None:
    result = simulate(fresh, "conference", "--name", "standup")

    assert answered(result) == ["200 OK"] * 8
    seen = fresh.events()
    assert [e["status"] for e in seen] == [
        "participant-join",
        "participant-join",
        "conference-start",
        "participant-mute",
        "participant-unmute",
        "participant-leave",
        "participant-leave",
        "conference-end",
    ]
    assert [e["sequence_number"] for e in seen] == list(range(1, 9))
    assert len({e["sid"] for e in seen}) == 1 and {e["name"] for e in seen} == {"standup"}
    assert len({e["call_sid"] for e in seen if e["call_sid"]}) == 2  # two participants


def test_a_conference_out_of_order_and_duplicated_runs_each_callback_once(fresh: Service) -> None:
    result = simulate(fresh, "conference", "--out-of-order", "--duplicate", "--seed", "4")

    assert "--seed 4" in result.stdout and result.stdout.count("(repeat)") >= 1
    seen = fresh.events()
    assert sorted(e["sequence_number"] for e in seen) == list(range(1, 9))  # each exactly once
    assert [e["sequence_number"] for e in seen] != list(range(1, 9))  # and not in Twilio's order


@pytest.mark.parametrize("answered_by", ["human", "machine_end_beep", "fax"])
def test_answering_machine_detection(fresh: Service, answered_by: str) -> None:
    args = ["amd"] + (["--answered-by", answered_by] if answered_by != "human" else [])
    result = simulate(fresh, *args)

    [seen] = fresh.events()
    assert (seen["handler"], seen["status"]) == ("amd", answered_by)
    assert seen["call_sid"].startswith("CA") and f"amd {answered_by}" in result.stdout


def test_a_recorded_call(fresh: Service) -> None:
    result = simulate(fresh, "recorded-call", "--text", "See you soon")

    assert answered(result) == ["200 OK"] * 7
    seen = fresh.events()
    assert [(e["handler"], e["status"]) for e in seen] == [
        ("call", "initiated"),
        ("call", "ringing"),
        ("call", "in-progress"),
        ("recording", "in-progress"),
        ("call", "completed"),
        ("recording", "completed"),
        ("transcription", "completed"),
    ]
    call_sids = {e["sid"] for e in seen if e["handler"] == "call"}
    call_sids |= {e["call_sid"] for e in seen if e["handler"] in ("recording", "transcription")}
    assert len(call_sids) == 1  # one call throughout
    recording_sids = {e["sid"] for e in seen if e["handler"] == "recording"}
    assert recording_sids == {next(e["recording_sid"] for e in seen if e["handler"] == "transcription")}
    assert seen[-1]["text"] == "See you soon"


def test_a_recorded_call_delivered_twice_and_shuffled_runs_each_handler_once(fresh: Service) -> None:
    result = simulate(fresh, "recorded-call", "--duplicate", "--out-of-order", "--seed", "11")

    assert result.stdout.count("(repeat)") >= 1
    seen = fresh.events()
    assert len(seen) == len({(e["handler"], e["status"]) for e in seen}) == 7  # each callback ran once


def test_an_ivr_call_prints_the_twiml_each_webhook_answered(fresh: Service) -> None:
    result = simulate(fresh, "ivr", "--digits", "2", "--from", "+15550001111")

    assert answered(result) == ["200 OK"] * 3
    seen = fresh.events()
    assert [(e["handler"], e["status"]) for e in seen] == [
        ("incoming", "ringing"),
        ("gather", "in-progress"),
        ("call", "completed"),
    ]
    assert seen[1]["digits"] == "2" and seen[0]["direction"] == "inbound"
    assert len({e["sid"] for e in seen}) == 1
    out = result.stdout
    assert "<Gather" in out and "Press 1 for sales, 2 for support.</Say>" in out  # the webhook's answer
    assert "<Say>You chose 2. Goodbye.</Say>" in out and "<Hangup />" in out  # the <Gather> action's
    assert out.index("<Gather") < out.index("You chose 2") < out.index("call completed")


def test_an_ivr_call_answered_by_speech(fresh: Service) -> None:
    result = simulate(fresh, "ivr", "--speech", "sales please")

    assert fresh.events()[1]["speech"] == "sales please"
    assert "You chose sales please" in result.stdout


def test_event_streams_posts_one_signed_batch(fresh: Service) -> None:
    result = simulate(fresh, "event-streams")

    assert answered(result) == ["200 OK"]
    assert f"POST {fresh.url}events " in result.stdout and "bodySHA256=" in result.stdout
    seen = fresh.events()
    assert [(e["handler"], e["status"], e["streamed"]) for e in seen] == [
        ("sms", "sent", True),
        ("sms", "delivered", True),
        ("call", "completed", True),
    ]
    assert seen[0]["sid"] == seen[1]["sid"]  # one message sent, then delivered
    assert "com.twilio.messaging.message.sent" in result.stdout


def test_event_streams_duplicate_sends_the_batch_twice_and_runs_nothing_twice(fresh: Service) -> None:
    result = simulate(fresh, "event-streams", "--duplicate", "--out-of-order", "--seed", "2")

    assert answered(result) == ["200 OK", "200 OK"]
    assert "[2/2] batch of 3 CloudEvents (repeat)" in result.stdout
    seen = fresh.events()
    assert sorted((e["handler"], e["status"]) for e in seen) == [
        ("call", "completed"),
        ("sms", "delivered"),
        ("sms", "sent"),
    ]


def test_event_streams_of_another_type_reach_app_streams(fresh: Service) -> None:
    kind = "com.twilio.voice.insights.call-summary.complete"
    simulate(fresh, "event-streams", "--type", kind)

    [seen] = fresh.events()
    assert (seen["handler"], seen["type"]) == ("streams", kind)


def test_event_streams_with_a_wrong_token_are_refused(fresh: Service) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWILIO_")} | {"TWILIO_AUTH_TOKEN": "no"}
    result = subprocess.run(
        [str(SCRIPT), "simulate", "event-streams", "--url", fresh.url],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEADLINE * 2,
    )

    assert result.returncode == 1 and answered(result) == ["403 Forbidden"]
    assert "1 of 1 batch(es) were not accepted (403)" in result.stdout
    assert fresh.events() == []


def test_the_account_sid_reaches_every_kind(tmp_path: Path) -> None:
    service = Service(tmp_path, account_sid=ACCOUNT)  # refuses callbacks of any other account
    try:
        for kind in ("recording", "transcription", "conference", "amd", "recorded-call", "ivr"):
            simulate(service, kind, "--account-sid", ACCOUNT)
        simulate(service, "event-streams", "--account-sid", ACCOUNT)
        seen = service.events()
        assert len(seen) == 2 + 1 + 8 + 1 + 7 + 3 + 3
        assert {e["account_sid"] for e in seen} == {ACCOUNT}
    finally:
        service.stop()


def test_help_for_each_new_kind_has_examples() -> None:
    for kind in ("recording", "transcription", "conference", "amd", "recorded-call", "ivr", "event-streams"):
        result = subprocess.run(
            [str(SCRIPT), "simulate", kind, "--help"], capture_output=True, text=True, timeout=DEADLINE
        )
        assert result.returncode == 0
        assert "examples:" in result.stdout and f"twilio-events simulate {kind}" in result.stdout
        assert "--public-url" in result.stdout and "--wait" in result.stdout


@pytest.mark.parametrize(("kind", "callbacks"), [("recording", 2), ("transcription", 1), ("amd", 1)])
def test_duplicates_of_every_kind_run_nothing_twice(fresh: Service, kind: str, callbacks: int) -> None:
    result = simulate(fresh, kind, "--duplicate", "--seed", "1")

    assert result.stdout.count("(repeat)") >= 1  # something really was sent twice
    assert len(answered(result)) > callbacks
    assert len(fresh.events()) == callbacks

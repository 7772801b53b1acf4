"""`twilio-events run`'s start-up summary for every channel: the handler rows, the setting that takes the
URL for each, the Event Streams sink URL, and a Try-it sample each registered handler receives."""

from __future__ import annotations

import itertools
import shlex
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from twilio_events import TwilioEvents
from twilio_events.cli.service import Service
from twilio_events.cli.try_it import try_it

from .conftest import DEADLINE, TOKEN, Process, free_port, wait_for
from .test_cli_run import cli, stdout_of, try_it_lines, wait_serving
from .test_cli_simulate_channels import CHANNELS_APP

Spawn = Callable[..., Process]
PUBLIC = "https://abc.ngrok.app"


def serve(spawn: Spawn, tmp_path: Path, source: str, *args: str) -> tuple[Process, int]:
    """`python -m twilio_events run app.py ARGS` with `source` as app.py, once it accepts connections."""
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    port = free_port()
    env = {
        "TWILIO_AUTH_TOKEN": TOKEN,
        "TWILIO_ACCOUNT_SID": "",
        "TWILIO_EVENTS_VALIDATE_SIGNATURE": "",
        "EVENTS_LOG": str(tmp_path / "events.jsonl"),
    }
    process = spawn(
        ["-m", "twilio_events", "run", "app.py", "--host", "127.0.0.1", "--port", str(port), *args], env
    )
    wait_serving(process, port)
    return process, port


def rows_of(output: str, column: str) -> list[list[str]]:
    """The rows, split on spaces, of the summary's table with a column named `column`."""
    lines = output.splitlines()
    start = next(index for index, line in enumerate(lines) if column in line) + 1
    end = next((index for index in range(start, len(lines)) if not lines[index].strip()), len(lines))
    return [line.split() for line in lines[start:end]]


def test_the_summary_lists_every_channel_its_setting_and_the_sink(spawn: Spawn, tmp_path: Path) -> None:
    process, port = serve(spawn, tmp_path, CHANNELS_APP, "--public-url", PUBLIC)
    output = stdout_of(process)

    handlers = {(row[0], " ".join(row[1:-1]), row[-1]) for row in rows_of(output, "CHANNEL")}
    assert handlers == {
        ("call", "incoming-call", "incoming()"),
        ("call", "gather", "gathered()"),
        ("call", "(any other)", "call_status()"),
        ("sms", "(any other)", "message_status()"),
        ("recording", "(any other)", "recording()"),
        ("transcription", "(any other)", "transcription()"),
        ("conference", "(any other)", "conference()"),
        ("amd", "(any other)", "amd()"),
        ("streams", "(any other)", "streamed()"),
    }
    for setting in ("recordingStatusCallback=URL", "transcribeCallback=URL", "asyncAmdStatusCallback=URL"):
        assert setting in output
    assert "statusCallback=URL of <Conference>" in output
    [sink] = rows_of(output, "EVENT STREAMS SINK")
    assert sink == ["twilioListener", f"http://127.0.0.1:{port}/events", f"{PUBLIC}/events"]
    assert "reach app.call, app.sms, app.amd and app.streams" in output
    assert f"twilio-events configure --event-streams --url {PUBLIC}/" in output
    # the sink URL shown is where the service really takes Event Streams batches
    result = cli("simulate", "event-streams", "--url", f"http://127.0.0.1:{port}/", "--public-url", PUBLIC)
    assert result.returncode == 0, result.stdout + result.stderr


MOUNTED_APP = """
from starlette.applications import Starlette
from starlette.routing import Mount

from twilio_events import TwilioEvents

events = TwilioEvents(event_streams_path="sink")
app = Starlette(routes=[Mount("/twilio", app=events)], lifespan=events.lifespan)


@events.streams.on("com.twilio.voice.insights.call-summary.complete")
def summary(event):
    print("handled", event.cloudevent_type, flush=True)
"""


def test_the_sink_of_a_mounted_app_and_a_streams_only_sample(spawn: Spawn, tmp_path: Path) -> None:
    process, port = serve(spawn, tmp_path, MOUNTED_APP)
    output = stdout_of(process)

    [sink] = rows_of(output, "EVENT STREAMS SINK")
    assert sink[:2] == ["twilioListener", f"http://127.0.0.1:{port}/twilio/sink"]
    assert "twilio-events configure --event-streams --url URL --sink-path sink" in output
    assert "recordingStatusCallback" not in output  # no recording handler: no recording setting
    assert "curl " not in output.split("Try it", 1)[1]  # a JSON batch: simulate only
    simulate = next(shlex.split(line) for line in output.splitlines() if " simulate " in line)
    assert simulate[2:] == [
        "event-streams", "--type", "com.twilio.voice.insights.call-summary.complete", "--sink-path", "sink",
        "--url", f"http://127.0.0.1:{port}/twilio/",
    ]  # fmt: skip
    result = cli(*simulate[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: "handled com.twilio.voice.insights" in stdout_of(process), "the streamed event")


def test_no_sink_url_when_no_handler_receives_streamed_events(spawn: Spawn, tmp_path: Path) -> None:
    source = "from twilio_events import TwilioEvents\napp = TwilioEvents()\n" + (
        "@app.recording.on_completed\ndef done(event):\n    pass\n"
    )
    process, _ = serve(spawn, tmp_path, source)

    output = stdout_of(process)
    assert "EVENT STREAMS SINK" not in output and "recordingStatusCallback=URL" in output
    assert ["recording", "completed", "done()"] in rows_of(output, "CHANNEL")


SINGLE_CHANNEL_APPS = {
    "recording": ("@app.recording.on_absent", "RecordingStatus=absent", ["recording", "--outcome", "absent"]),
    "transcription": ("@app.transcription.on_completed", "TranscriptionStatus=completed", ["transcription"]),
    "conference": ("@app.conference.on_conference_end", "StatusCallbackEvent=conference-end", ["conference"]),
    "amd": ("@app.amd.on_machine_end_beep", "AnsweredBy=machine_end_beep", ["amd", "--answered-by"]),
    "ivr": ("@app.call.on_incoming", "Direction=inbound", ["ivr"]),
}


@pytest.mark.parametrize("channel", sorted(SINGLE_CHANNEL_APPS))
def test_try_it_reaches_the_handler_of_each_channel(spawn: Spawn, tmp_path: Path, channel: str) -> None:
    decorator, sent, arguments = SINGLE_CHANNEL_APPS[channel]
    source = (
        "from twilio_events import TwilioEvents\napp = TwilioEvents()\n\n"
        f"{decorator}\ndef handler(event):\n    print('handled', event.status, event.sid, flush=True)\n"
    )
    process, port = serve(spawn, tmp_path, source)
    curl, simulate = try_it_lines(stdout_of(process))

    assert sent in curl and simulate[2 : 2 + len(arguments)] == arguments
    form = dict(value.split("=", 1) for flag, value in itertools.pairwise(curl) if flag == "--data-urlencode")
    signature = next(value for flag, value in itertools.pairwise(curl) if flag == "-H").split(":", 1)[1]
    response = httpx2.post(
        f"http://127.0.0.1:{port}/", data=form, headers={"X-Twilio-Signature": signature}, timeout=DEADLINE
    )
    assert response.status_code == 200, response.text
    wait_for(lambda: stdout_of(process).count("handled ") == 1, "the curl line's callback to run the handler")
    result = cli(*simulate[1:])
    assert result.returncode == 0, result.stdout + result.stderr
    wait_for(lambda: stdout_of(process).count("handled ") >= 2, "simulate's callbacks to run the handler")


def test_try_it_samples_without_a_server() -> None:
    apps = {name: TwilioEvents(auth_token=TOKEN) for name in ("calls", "messages", "conference", "amd")}
    apps["calls"].recording.on_completed(lambda event: None)
    apps["calls"].call.on_completed(lambda event: None)  # calls come first
    apps["messages"].sms.on_failed(lambda event: None)
    apps["messages"].amd.on_human(lambda event: None)  # messages before the other channels
    apps["conference"].conference.on("mute")(lambda event: None)
    apps["amd"].amd.on_any(lambda event: None)

    text = {name: "\n".join(try_it(Service.of(app, "app.py"))) for name, app in apps.items()}

    assert "CallStatus=completed" in text["calls"] and " simulate call --lifecycle " in text["calls"]
    assert "MessageStatus=failed" in text["messages"] and " simulate sms --lifecycle " in text["messages"]
    assert "StatusCallbackEvent=participant-mute" in text["conference"]
    assert "CallSid=CA" in text["conference"] and " simulate conference " in text["conference"]
    assert "AnsweredBy=human" in text["amd"] and " simulate amd --answered-by human " in text["amd"]


def test_the_summary_of_a_running_service_names_the_sink_even_without_a_public_url(
    spawn: Spawn, tmp_path: Path
) -> None:
    source = "from twilio_events import TwilioEvents\napp = TwilioEvents()\n\n@app.sms.on_delivered\n"
    source += "def delivered(event):\n    pass\n"
    process, port = serve(spawn, tmp_path, source)

    [sink] = rows_of(stdout_of(process), "EVENT STREAMS SINK")
    assert sink[:2] == ["twilioListener", f"http://127.0.0.1:{port}/events"]
    assert f"ngrok http {port}" in " ".join(sink)
    assert "twilio-events configure --event-streams --url URL" in stdout_of(process)

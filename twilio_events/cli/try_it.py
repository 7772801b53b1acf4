"""The "Try it" lines of `twilio-events run`'s start-up summary: a ready `curl` line for one callback a
registered handler receives, and the `twilio-events simulate` command that sends more of its kind."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..app import TwilioEvents
from ..channels import ANY, Channel
from ..payloads import CALLEE, CALLER, new_sid, sign
from ..reconcile import CALL_DONE
from .service import Service

FRESH_TOKEN_HEADER = "-H \"I-Twilio-Idempotency-Token: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\""
"""A curl option sending a new token, 32 hex digits from /dev/urandom, each time a POSIX shell runs it."""

SAMPLE_STREAM_TYPE = "com.twilio.voice.insights.call-summary.complete"
"""The CloudEvent type the sample sends an app whose only Event Streams handler is `app.streams.on_any`."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One callback to try: its parameters ("XX*": a fresh SID; none: no curl line), the simulate arguments
    that send more of its kind, and what they send, in words."""

    params: dict[str, str]
    simulate: list[str]
    what: str


def try_it(service: Service) -> list[str]:
    """How to send the first listener a test callback that reaches a handler: a ready `curl` line
    (signed when the app checks signatures) and the `twilio-events simulate` command for more."""
    app = service.events
    if app is None or not service.listeners:
        return []
    url = service.listeners[0].url(service.path)
    sink = (sink_route(service) or "/events").removeprefix(service.path.rstrip("/"))
    sample = sample_callback(app, sink)
    simulate = [_command(), "simulate", *sample.simulate, "--url", url]
    if app.public_url:
        simulate += ["--public-url", app.public_url]
    if app.account_sid:
        simulate += ["--account-sid", app.account_sid]
    signed = app.validate_signature and app.auth_token
    note = (
        "`simulate` signs with TWILIO_AUTH_TOKEN (or --auth-token), which must be this service's."
        if signed
        else "Signatures are not checked, so no auth token is needed."
    )
    if not sample.params:
        return [f"Try it, from another terminal: {sample.what}:", f"  {shlex.join(simulate)}", note]
    params = {**({"AccountSid": app.account_sid} if app.account_sid else {}), **sample.params}
    params = {name: new_sid(value[:2]) if value.endswith("*") else value for name, value in params.items()}
    curl = ["curl", "-X", "POST", url]
    for name, value in params.items():
        curl += ["--data-urlencode", f"{name}={value}"]
    if signed and app.auth_token:
        # Signed for the URL the app checks: the public URL when it has one, else the local one.
        signed_for = app.public_url.rstrip("/") + service.path if app.public_url else url
        curl += ["-H", f"X-Twilio-Signature:{sign(signed_for, params, app.auth_token)}"]
        note = (
            "The curl line is signed with this service's auth token; `simulate` signs with "
            "TWILIO_AUTH_TOKEN (or --auth-token), which must be the same."
        )
    else:
        note = "Signatures are not checked, so neither needs the auth token."
    return [
        f"Try it, from another terminal: {sample.what}:",
        f"  {shlex.join(curl)} {FRESH_TOKEN_HEADER}",
        f"  {shlex.join(simulate)}",
        note,
        "Each run of the curl line sends a new I-Twilio-Idempotency-Token, so the service takes it for a "
        "new callback, not a retry.",
    ]


def sink_route(service: Service) -> str | None:
    """The URL path of the app's Event Streams sink as served (below any mount), or None without one."""
    app = service.events
    if app is None:
        return None
    streams_path = app.event_streams_path
    if streams_path is None:
        return None
    below = streams_path.removeprefix(app.path.rstrip("/"))  # "/events" for an app at "/" or "/twilio/"
    return service.path.rstrip("/") + below


def sample_callback(app: TwilioEvents, sink_path: str = "/events") -> Sample:
    """A callback a registered handler receives: the calls' or messages' when they have handlers (a call
    status when none has any), else the first other channel's with handlers, else an event to the sink
    (at `sink_path` below the app) for app.streams."""
    if app.call.handlers or not any(channel.handlers for channel in app.channels.values()):
        return _call(app.call)
    if app.sms.handlers:
        return _message(app.sms)
    name = next((name for name in _OTHERS if app.channels[name].handlers), None)
    if name is None:
        return _streamed(app.streams, sink_path)
    return _OTHERS[name](app.channels[name])


def _first(channel: Channel[Any, Any], default: str) -> str:
    """The first status (in lifecycle order) with a handler of its own, else `default`."""
    handlers = channel.handlers
    return next((s.value for s in channel.status_type if s.value in handlers), default)


def _call(channel: Channel[Any, Any]) -> Sample:
    handlers = channel.handlers
    if "incoming-call" in handlers and not set(handlers) - {"incoming-call", "gather"}:
        return Sample(
            {"CallSid": "CA*", "CallStatus": "ringing", "Direction": "inbound"} | _PARTIES,
            ["ivr"],
            "one incoming call's webhook (see its TwiML), then a call through an IVR",
        )
    status = "ringing"
    if handlers and status not in handlers and ANY not in handlers:
        status = _first(channel, status)
    params = {"CallSid": "CA*", "CallStatus": status, "CallbackSource": "call-progress-events"}
    if status in CALL_DONE:  # a call's end says how long it lasted, as Twilio's does
        params["CallDuration"] = "42" if status == "completed" else "0"
    return Sample(
        params | _PARTIES,
        ["call", "--lifecycle"],
        f"one {status} callback, then a whole call (initiated to completed)",
    )


def _message(channel: Channel[Any, Any]) -> Sample:
    handlers = channel.handlers
    if "received" in handlers or (ANY in handlers and len(handlers) == 1):
        return Sample(
            {"MessageSid": "SM*", "SmsStatus": "received", "Body": "hello"} | _PARTIES,
            ["inbound-sms", "--body", "hello"],
            "one incoming message, then another",
        )
    status = _first(channel, "delivered")
    return Sample(
        {"MessageSid": "SM*", "MessageStatus": status, "SmsStatus": status} | _PARTIES,
        ["sms", "--lifecycle"],
        f"one {status} message status callback, then a whole message (queued to delivered)",
    )


def _recording(channel: Channel[Any, Any]) -> Sample:
    status = _first(channel, "completed")
    outcome = ["--outcome", status] if status in ("absent", "failed") else []
    return Sample(
        {"CallSid": "CA*", "RecordingSid": "RE*", "RecordingStatus": status, "RecordingSource": "RecordVerb"},
        ["recording", *outcome],
        f"one {status} recording status callback, then a recording (in-progress, then its end)",
    )


def _transcription(channel: Channel[Any, Any]) -> Sample:
    status = _first(channel, "completed")
    text = {"TranscriptionText": "Please call me back."} if status == "completed" else {}
    return Sample(
        {"CallSid": "CA*", "RecordingSid": "RE*", "TranscriptionSid": "TR*", "TranscriptionStatus": status}
        | text,
        ["transcription"] + (["--status", status] if status == "failed" else []),
        f"one {status} transcription, then another",
    )


def _conference(channel: Channel[Any, Any]) -> Sample:
    event = _first(channel, "participant-join")
    participant = {"CallSid": "CA*"} if event.startswith(("participant-", "announcement-")) else {}
    return Sample(
        {"ConferenceSid": "CF*", "FriendlyName": "support-room", "StatusCallbackEvent": event}
        | {"SequenceNumber": "1"}
        | participant,
        ["conference"],
        f"one {event} conference callback, then a conference with two participants",
    )


def _amd(channel: Channel[Any, Any]) -> Sample:
    answered_by = _first(channel, "human")
    return Sample(
        {"CallSid": "CA*", "AnsweredBy": answered_by, "MachineDetectionDuration": "2340"},
        ["amd", "--answered-by", answered_by],
        f"one answering machine detection result ({answered_by}), then another",
    )


def _streamed(channel: Channel[Any, Any], sink_path: str) -> Sample:
    event_type = next((key for key in channel.handlers if key != ANY), SAMPLE_STREAM_TYPE)
    path = ["--sink-path", sink_path.strip("/")] if sink_path.strip("/") != "events" else []
    return Sample({}, ["event-streams", "--type", event_type, *path], f"one {event_type} event to the sink")


_PARTIES = {"From": CALLER, "To": CALLEE}
_OTHERS: dict[str, Callable[[Channel[Any, Any]], Sample]] = {
    "recording": _recording,
    "transcription": _transcription,
    "conference": _conference,
    "amd": _amd,
}
"""The channels besides calls and messages, in the order the sample is chosen from."""


def _command() -> str:
    """How to run `twilio-events` from here: its name, or its path when it is not on PATH."""
    if shutil.which("twilio-events") is None:
        script = Path(sys.executable).with_name("twilio-events")
        if script.exists():
            return os.path.relpath(script) if script.is_relative_to(Path.cwd()) else str(script)
    return "twilio-events"

"""The start-up summary of `twilio-events run`: where the app listens, the URL to give Twilio, which
handler runs for which status, and a ready test callback."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from .. import __version__
from ..app import TwilioEvents
from ..channels import ANY, Channel
from ..listener import Listener
from .output import table
from .service import Service

FRESH_TOKEN_HEADER = "-H \"I-Twilio-Idempotency-Token: $(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\""
"""A curl option sending a new token, 32 hex digits from /dev/urandom, each time a POSIX shell runs it."""


def summary(service: Service) -> str:
    """What is served where, the URL to give Twilio, and which handler runs for which status."""
    app = service.events
    if app is None:
        rows = [[listener.name, listener.url("/")] for listener in service.listeners]
        return "\n".join(
            [
                f"twilio-events {__version__}: serving {service.target}, "
                "an ASGI app with no TwilioEvents app mounted in it",
                "",
                table(["LISTENER", "LOCAL URL"], rows),
            ]
        )
    if not app.validate_signature:
        checks = "X-Twilio-Signature NOT validated (local development only)"
    elif app.public_url:
        checks = f"X-Twilio-Signature validated for {app.public_url.rstrip('/')}"
    elif app.trust_forwarded_headers:
        checks = "X-Twilio-Signature validated for the URL in Forwarded / X-Forwarded-* headers"
    else:
        checks = "X-Twilio-Signature validated for the URL each request was sent to"
    rows = [
        [listener.name, listener.url(service.path), _twilio_url(service, listener)]
        for listener in service.listeners
    ]
    lines = [
        f"twilio-events {__version__}: serving {service.target}; {checks}",
        "",
        table(["LISTENER", "LOCAL URL", "URL FOR TWILIO (method POST)"], rows),
        "",
        "Give Twilio that URL, method POST:",
        '  Console > Phone Numbers > your number > Messaging: "A MESSAGE COMES IN"',
        '  Console > Phone Numbers > your number > Voice: "CALL STATUS CHANGES" (the STATUS CALLBACK URL)',
        "  or status_callback=URL when you create a call or send a message.",
        "  `twilio-events configure --number +1... --url URL` sets the phone number for you.",
        "",
        table(["CHANNEL", "STATUS", "HANDLER"], _handler_rows(app.call) + _handler_rows(app.sms)),
        "",
        *try_it(service),
    ]
    return "\n".join(lines)


def try_it(service: Service) -> list[str]:
    """How to send the first listener a test callback that reaches a handler: a ready `curl` line
    (signed when the app checks signatures) and the `twilio-events simulate` command for more."""
    from ..payloads import CALLEE, CALLER, new_sid, sign

    app = service.events
    if app is None or not service.listeners:
        return []
    url = service.listeners[0].url(service.path)
    params, simulate, what = _sample_callback(app)
    params = {**({"AccountSid": app.account_sid} if app.account_sid else {}), **params}
    params |= {"From": CALLER, "To": CALLEE}
    params = {name: new_sid(value[:2]) if value.endswith("*") else value for name, value in params.items()}
    curl = ["curl", "-X", "POST", url]
    for name, value in params.items():
        curl += ["--data-urlencode", f"{name}={value}"]
    simulate = [_command(), "simulate", *simulate, "--url", url]
    if app.public_url:
        simulate += ["--public-url", app.public_url]
    if app.account_sid:
        simulate += ["--account-sid", app.account_sid]
    if app.validate_signature and app.auth_token:
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
        f"Try it, from another terminal: {what}:",
        f"  {shlex.join(curl)} {FRESH_TOKEN_HEADER}",
        f"  {shlex.join(simulate)}",
        note,
        "Each run of the curl line sends a new I-Twilio-Idempotency-Token, so the service takes it for a "
        "new callback, not a retry.",
    ]


def _sample_callback(app: TwilioEvents) -> tuple[dict[str, str], list[str], str]:
    """Parameters of one callback a registered handler receives ("SID*": a fresh SID), the simulate
    arguments that exercise that channel, and what they send."""
    calls, messages = app.call.handlers, app.sms.handlers
    if messages and not calls:
        if "received" in messages or (ANY in messages and len(messages) == 1):
            return (
                {"MessageSid": "SM*", "SmsStatus": "received", "Body": "hello"},
                ["inbound-sms", "--body", "hello"],
                "one incoming message, then another",
            )
        status = next((s.value for s in app.sms.status_type if s.value in messages), "delivered")
        return (
            {"MessageSid": "SM*", "MessageStatus": status, "SmsStatus": status},
            ["sms", "--lifecycle"],
            f"one {status} message status callback, then a whole message (queued to delivered)",
        )
    status = "ringing"
    if calls and status not in calls and ANY not in calls:
        status = next((s.value for s in app.call.status_type if s.value in calls), status)
    return (
        {"CallSid": "CA*", "CallStatus": status, "CallbackSource": "call-progress-events"},
        ["call", "--lifecycle"],
        f"one {status} callback, then a whole call (initiated to completed)",
    )


def _command() -> str:
    """How to run `twilio-events` from here: its name, or its path when it is not on PATH."""
    if shutil.which("twilio-events") is None:
        script = Path(sys.executable).with_name("twilio-events")
        if script.exists():
            return os.path.relpath(script) if script.is_relative_to(Path.cwd()) else str(script)
    return "twilio-events"


def _twilio_url(service: Service, listener: Listener) -> str:
    """The URL to give Twilio for this listener, or how to get one."""
    if service.events is not None and service.events.public_url:
        return service.events.public_url.rstrip("/") + service.path
    return f"(not reachable by Twilio: expose port {listener.port}, e.g. `ngrok http {listener.port}`)"


def _handler_rows(channel: Channel[Any, Any]) -> list[list[str]]:
    """One row per status with a handler, in lifecycle order, the catch-all last."""
    handlers = channel.handlers
    if not handlers:
        return [[channel.name, "(none)", "every callback is acknowledged with 200, no handler runs"]]
    order = [status.value for status in channel.status_type]
    keys = sorted(handlers, key=lambda key: order.index(key) if key in order else len(order))
    rows = [[channel.name, key, f"{handlers[key].name}()"] for key in keys if key != ANY]
    if ANY in handlers:
        rows.append([channel.name, "(any other)", f"{handlers[ANY].name}()"])
    return rows

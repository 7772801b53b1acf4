"""The `run` command: listeners from the options, a start-up summary, and serving (with optional reload)."""

from __future__ import annotations

import dataclasses
import errno
import os
import shlex
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from ..app import TwilioEvents
from ..channels import ANY, Channel
from ..listener import Listener
from .output import CommandError, table

DEFAULT_LISTENER_NAME = "twilioListener"


def listeners_from_options(
    defaults: Sequence[Listener], ports: Sequence[int], names: Sequence[str], host: str | None
) -> list[Listener]:
    """The app's listeners, replaced by one per `--port` (named in order), on `--host` if given."""
    if len(set(ports)) != len(ports):
        raise CommandError(f"a port is given twice: {', '.join(map(str, ports))}")
    if ports:
        if len(names) > len(ports):
            raise CommandError(f"{len(names)} listener names for {len(ports)} ports")
        base = names[0] if names else DEFAULT_LISTENER_NAME
        listeners = [
            Listener(port=port, name=names[i] if i < len(names) else base if i == 0 else f"{base}-{port}")
            for i, port in enumerate(ports)
        ]
    else:
        if len(names) > len(defaults):
            raise CommandError(f"{len(names)} listener names for {len(defaults)} listener(s): add --port")
        listeners = [
            dataclasses.replace(listener, name=names[i]) if i < len(names) else listener
            for i, listener in enumerate(defaults)
        ]
    if host is not None:
        listeners = [dataclasses.replace(listener, host=host) for listener in listeners]
    return listeners


def check_ports_free(listeners: Sequence[Listener]) -> None:
    """Fail with one line, before anything starts, when a listener's port is taken."""
    for listener in listeners:
        try:
            addresses = socket.getaddrinfo(
                listener.host or None, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise CommandError(f"cannot listen on host {listener.host!r}: {exc.strerror}") from None
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
                try:
                    probe.bind(address)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise CommandError(
                            f"port {listener.port} is already in use on {listener.host} "
                            f"(listener {listener.name}): stop what holds it, or choose another with --port"
                        ) from None
                    raise CommandError(
                        f"cannot listen on {listener.host}:{listener.port} (listener {listener.name}): "
                        f"{exc.strerror}"
                    ) from None


def summary(app: TwilioEvents, target: str) -> str:
    """What is served where, the URL to give Twilio, and which handler runs for which status."""
    if not app.validate_signature:
        checks = "X-Twilio-Signature NOT validated (local development only)"
    elif app.public_url:
        checks = f"X-Twilio-Signature validated for {app.public_url.rstrip('/')}"
    elif app.trust_forwarded_headers:
        checks = "X-Twilio-Signature validated for the URL in Forwarded / X-Forwarded-* headers"
    else:
        checks = "X-Twilio-Signature validated for the URL each request was sent to"
    rows = [[listener.name, listener.url(app.path), _twilio_url(app, listener)] for listener in app.listeners]
    lines = [
        f"twilio-events {__version__}: serving {target}; {checks}",
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
        *try_it(app),
    ]
    return "\n".join(lines)


def try_it(app: TwilioEvents) -> list[str]:
    """How to send the first listener a test callback that reaches a handler: a ready `curl` line
    (signed when the app checks signatures) and the `twilio-events simulate` command for more."""
    from ..payloads import CALLEE, CALLER, new_sid, sign

    if not app.listeners:
        return []
    url = app.listeners[0].url(app.path)
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
        signed_for = app.public_url.rstrip("/") + app.path if app.public_url else url
        curl += ["-H", f"X-Twilio-Signature:{sign(signed_for, params, app.auth_token)}"]
        note = (
            "The curl line is signed with this service's auth token; `simulate` signs with "
            "TWILIO_AUTH_TOKEN (or --auth-token), which must be the same."
        )
    else:
        note = "Signatures are not checked, so neither needs the auth token."
    return [
        f"Try it, from another terminal: {what}:",
        f"  {shlex.join(curl)}",
        f"  {shlex.join(simulate)}",
        note,
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


def _twilio_url(app: TwilioEvents, listener: Listener) -> str:
    if app.public_url:
        return app.public_url.rstrip("/") + app.path
    return f"(not reachable by Twilio: expose port {listener.port}, e.g. `ngrok http {listener.port}`)"


def _handler_rows(channel: Channel[Any, Any]) -> list[list[str]]:
    handlers = channel.handlers
    if not handlers:
        return [[channel.name, "(none)", "every callback is acknowledged with 200, no handler runs"]]
    order = [status.value for status in channel.status_type]
    keys = sorted(handlers, key=lambda key: order.index(key) if key in order else len(order))
    rows = [[channel.name, key, f"{handlers[key].name}()"] for key in keys if key != ANY]
    if ANY in handlers:
        rows.append([channel.name, "(any other)", f"{handlers[ANY].name}()"])
    return rows


def serve_with_reload(child_args: Sequence[str], watch: Path, reload_env: str) -> int:
    """Run `twilio-events <child_args>` in a child process, restarting it when a .py file under `watch`
    changes; every listener of the app is restarted together."""
    import watchfiles  # a dependency of uvicorn[standard]

    os.environ[reload_env] = "false"  # the child serves; only this process watches
    command = shlex.join([sys.executable, "-m", "twilio_events", *child_args])

    def restarting(changes: set[tuple[watchfiles.Change, str]]) -> None:
        changed = sorted({os.path.relpath(path) for _, path in changes})
        print(f"twilio-events: {', '.join(changed)} changed: restarting", file=sys.stderr, flush=True)

    print(f"twilio-events: reloading on changes to .py files under {watch}", file=sys.stderr, flush=True)
    watchfiles.run_process(
        watch,
        target=command,
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        callback=restarting,
    )
    return 0

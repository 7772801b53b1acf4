"""The start-up summary of `twilio-events run`: where the app listens, the URLs to give Twilio and which
setting takes each, which handler runs for which status, and a ready test callback (try_it.py)."""

from __future__ import annotations

import shlex
from typing import Any

from .. import __version__
from ..app import TwilioEvents
from ..channels import ANY, Channel
from ..listener import Listener
from .output import table
from .service import Service
from .try_it import sink_route, try_it
from .workers import summary_line

STREAMED_CHANNELS = ("call", "sms", "amd", "streams")
"""The channels whose handlers Event Streams events reach (its call, message and AMD events, and any other
type for app.streams)."""

VOICE_SETTINGS = {
    "recording": "  recordingStatusCallback=URL (app.recording): of <Record>, <Dial record>, "
    "<Conference record> or a call's recording",
    "transcription": '  transcribeCallback=URL (app.transcription): of <Record transcribe="true">',
    "conference": "  statusCallback=URL of <Conference> (app.conference), with the statusCallbackEvent "
    "you want",
    "amd": '  asyncAmdStatusCallback=URL (app.amd): a call created with machineDetection and asyncAmd="true"',
}
"""The setting that takes the webhook URL for each voice channel besides calls, shown when it has handlers."""


def summary(service: Service, processes: int = 1) -> str:
    """What is served where and by how many processes, the URLs to give Twilio, and which handler runs for
    which status."""
    app = service.events
    if app is None:
        rows = [[listener.name, listener.url("/")] for listener in service.listeners]
        return "\n".join(
            [
                f"twilio-events {__version__}: serving {service.target}, "
                "an ASGI app with no TwilioEvents app mounted in it",
                "",
                table(["LISTENER", "LOCAL URL"], rows),
                summary_line(processes),
            ]
        )
    rows = [
        [listener.name, listener.url(service.path), _twilio_url(service, listener, service.path)]
        for listener in service.listeners
    ]
    lines = [
        f"twilio-events {__version__}: serving {service.target}; {_checks(app)}",
        "",
        table(["LISTENER", "LOCAL URL", "URL FOR TWILIO (method POST)"], rows),
        summary_line(processes),
        "",
        "Give Twilio that URL, method POST:",
        '  Console > Phone Numbers > your number > Messaging: "A MESSAGE COMES IN"',
        '  Console > Phone Numbers > your number > Voice: "CALL STATUS CHANGES" (the STATUS CALLBACK URL)',
        "  or status_callback=URL when you create a call or send a message.",
        *(line for name, line in VOICE_SETTINGS.items() if app.channels[name].handlers),
        "  `twilio-events configure --number +1... --url URL` sets the phone number for you.",
        *_sink(service, app),
        "",
        table(["CHANNEL", "STATUS", "HANDLER"], _handler_table(app)),
        "",
        *try_it(service),
    ]
    return "\n".join(lines)


def _sink(service: Service, app: TwilioEvents) -> list[str]:
    """The Event Streams sink's URLs, when the app receives streamed events and a handler would run."""
    route = sink_route(service)
    receivers = [f"app.{name}" for name in STREAMED_CHANNELS if app.channels[name].handlers]
    if route is None or not receivers:
        return []
    rows = [
        [listener.name, listener.url(route), _twilio_url(service, listener, route)]
        for listener in service.listeners
    ]
    return [
        "",
        table(["LISTENER", "EVENT STREAMS SINK", "SINK URL FOR TWILIO"], rows),
        "",
        f"Event Streams events reach {_and(receivers)} at the sink URL. Give Twilio that URL as the",
        "  destination of an Event Streams webhook sink (method POST), subscribed to the events you want:",
        f"  `{shlex.join(_configure_sink(service, app, route))}` creates the sink and its subscription.",
    ]


def _configure_sink(service: Service, app: TwilioEvents, route: str) -> list[str]:
    """The `configure --event-streams` command that points a sink at this app's sink URL."""
    url = app.public_url.rstrip("/") + service.path if app.public_url else "URL"
    below = route.removeprefix(service.path.rstrip("/")).strip("/")
    path = ["--sink-path", below] if below != "events" else []
    return ["twilio-events", "configure", "--event-streams", "--url", url, *path]


def _and(names: list[str]) -> str:
    """ "a", "a and b", "a, b and c"."""
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _checks(app: TwilioEvents) -> str:
    """How signatures are checked, in words."""
    if not app.validate_signature:
        return "X-Twilio-Signature NOT validated (local development only)"
    if app.public_url:
        return f"X-Twilio-Signature validated for {app.public_url.rstrip('/')}"
    if app.trust_forwarded_headers:
        return "X-Twilio-Signature validated for the URL in Forwarded / X-Forwarded-* headers"
    return "X-Twilio-Signature validated for the URL each request was sent to"


def _twilio_url(service: Service, listener: Listener, route: str) -> str:
    """The URL to give Twilio for `route` on this listener, or how to get one."""
    if service.events is not None and service.events.public_url:
        return service.events.public_url.rstrip("/") + route
    return f"(not reachable by Twilio: expose port {listener.port}, e.g. `ngrok http {listener.port}`)"


def _handler_table(app: TwilioEvents) -> list[list[str]]:
    """The calls' and messages' handlers (or that none runs), then every other channel that has some."""
    rows = _handler_rows(app.call) + _handler_rows(app.sms)
    for name, channel in app.channels.items():
        if name not in ("call", "sms") and channel.handlers:
            rows += _handler_rows(channel)
    return rows


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

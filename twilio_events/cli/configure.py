"""`twilio-events configure`: point a Twilio phone number's webhooks at the service with the REST API, and
(`--event-streams`, in event_streams.py) an Event Streams webhook sink at its sink URL."""

from __future__ import annotations

import argparse
import ipaddress
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from .options import add_command, env, sink_url
from .output import CommandError, table

if TYPE_CHECKING:
    from twilio.rest import Client


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of an IncomingPhoneNumber: its Console label, REST parameter and SDK attribute."""

    label: str
    parameter: str
    attribute: str


SMS_SETTINGS = (
    Setting('Messaging "A MESSAGE COMES IN"', "SmsUrl", "sms_url"),
    Setting("  method", "SmsMethod", "sms_method"),
)
VOICE_SETTINGS = (
    Setting('Voice "CALL STATUS CHANGES"', "StatusCallback", "status_callback"),
    Setting("  method", "StatusCallbackMethod", "status_callback_method"),
)
INCOMING_CALL_SETTINGS = (
    Setting('Voice "A CALL COMES IN"', "VoiceUrl", "voice_url"),
    Setting("  method", "VoiceMethod", "voice_method"),
)


def add_parser(commands: Any) -> None:
    """`configure` and its options."""
    configure = add_command(
        commands,
        "configure",
        "Point a Twilio phone number's webhooks at the service (method POST) with the REST API.",
        _EXAMPLES,
    )
    configure.add_argument(
        "--number",
        metavar="E164",
        help="the phone number, e.g. +15551234567, or its PN... SID (env TWILIO_PHONE_NUMBER)",
    )
    configure.add_argument(
        "--url",
        help="the public URL of the service, e.g. https://abc.ngrok.app/ (env TWILIO_EVENTS_PUBLIC_URL)",
    )
    configure.add_argument(
        "--sms",
        action="store_true",
        help='set Messaging "A MESSAGE COMES IN" (SmsUrl); the default when neither --voice nor '
        "--incoming-call is given",
    )
    configure.add_argument(
        "--voice",
        action="store_true",
        help='set Voice "CALL STATUS CHANGES" (the voice StatusCallback); add --sms to set both',
    )
    configure.add_argument(
        "--incoming-call",
        action="store_true",
        help='set Voice "A CALL COMES IN" (VoiceUrl): the app answers incoming calls (@app.call.on_incoming)',
    )
    configure.add_argument(
        "--event-streams",
        action="store_true",
        help="create (or reuse) an Event Streams webhook sink for URL + --sink-path and subscribe it to the "
        "call and message status events; with --number, the number is set too",
    )
    configure.add_argument(
        "--sink-path",
        default="events",
        metavar="PATH",
        help="where the app receives Event Streams, below --url (default events, its event_streams_path)",
    )
    configure.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    configure.add_argument("--account-sid", metavar="SID", help="the account (env TWILIO_ACCOUNT_SID)")
    configure.add_argument("--auth-token", metavar="TOKEN", help="its auth token (env TWILIO_AUTH_TOKEN)")
    configure.add_argument(
        "--api-base-url",
        metavar="URL",
        help="send the REST calls here instead of https://api.twilio.com, e.g. to a mock of the API "
        "(env TWILIO_EVENTS_API_BASE_URL)",
    )


def execute(args: argparse.Namespace) -> int:
    """Check the options, then set the number's webhooks (or show what would change)."""
    from .twilio_api import client

    number = args.number or env("TWILIO_PHONE_NUMBER")
    url = args.url or env("TWILIO_EVENTS_PUBLIC_URL")
    if not number and not args.event_streams:
        raise CommandError(
            "which number? pass --number +15551234567 (or set TWILIO_PHONE_NUMBER), or --event-streams"
        )
    if not url:
        raise CommandError("which URL? pass --url https://abc.ngrok.app/ (or set TWILIO_EVENTS_PUBLIC_URL)")
    destination = sink_url(webhook_url(url), args.sink_path) if args.event_streams else ""
    rest = client(
        args.account_sid or env("TWILIO_ACCOUNT_SID"),
        args.auth_token or env("TWILIO_AUTH_TOKEN"),
        args.api_base_url or env("TWILIO_EVENTS_API_BASE_URL"),
    )
    if args.event_streams:
        from .event_streams import configure_event_streams

        configure_event_streams(rest, destination, dry_run=args.dry_run, out=sys.stdout)
    if not number:
        return 0
    return configure(
        rest,
        number,
        url,
        sms=args.sms or not (args.voice or args.incoming_call),
        voice=args.voice,
        incoming_call=args.incoming_call,
        dry_run=args.dry_run,
        out=sys.stdout,
    )


def webhook_url(url: str) -> str:
    """`url` with at least "/" as its path (Twilio signs the URL as configured); refuse a URL Twilio could
    never call: not http(s), or on this machine or a private network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--url must be an http(s) URL such as https://abc.ngrok.app/, got {url!r}")
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
        local = address.is_loopback or address.is_private or address.is_unspecified or address.is_link_local
    except ValueError:
        local = host == "localhost" or host.endswith((".localhost", ".local"))
    if local:
        raise CommandError(
            f"Twilio cannot reach {url}: it is on this machine or a private network. Expose the service "
            "(e.g. `ngrok http 8090`) and pass the public https URL"
        )
    return url if parts.path else urlunsplit(parts._replace(path="/"))


def configure(
    rest: Client,
    number: str,
    url: str,
    *,
    sms: bool,
    voice: bool,
    dry_run: bool,
    out: TextIO,
    incoming_call: bool = False,
) -> int:
    """Set the number's webhooks to `url` (method POST), printing the values before and after."""
    from .twilio_api import update_number

    url = webhook_url(url)
    settings = (
        (SMS_SETTINGS if sms else ())
        + (INCOMING_CALL_SETTINGS if incoming_call else ())
        + (VOICE_SETTINGS if voice else ())
    )
    wanted = {}
    for setting in settings:
        wanted[setting.attribute] = "POST" if setting.parameter.endswith("Method") else url
    before, after, changing = update_number(rest, number, wanted, dry_run=dry_run)

    print(
        f"{before.phone_number} ({before.sid}, {before.friendly_name!r}) in account {before.account_sid}",
        file=out,
    )
    rows = [
        [
            setting.label,
            f"({setting.parameter})",
            _shown(getattr(before, setting.attribute)),
            _shown(wanted[setting.attribute] if dry_run else getattr(after, setting.attribute)),
        ]
        for setting in settings
    ]
    print(table(["SETTING", "", "BEFORE", "WOULD BE" if dry_run else "AFTER"], rows), file=out)
    _notes(before, changing, url, sms=sms, voice=voice, dry_run=dry_run, out=out)
    return 0


def _notes(
    before: Any, changing: dict[str, str], url: str, *, sms: bool, voice: bool, dry_run: bool, out: TextIO
) -> None:
    """What overrides the settings, what changed, and where message status callbacks are set."""
    overriding = [("Messaging", "sms_application_sid")] * sms + [("Voice", "voice_application_sid")] * voice
    for kind, attribute in overriding:
        if app_sid := getattr(before, attribute, None):
            print(
                f"note: {kind} on this number is handled by TwiML App {app_sid}; Twilio uses the App's URLs "
                "while it is set",
                file=out,
            )
    if not changing:
        print("nothing to change: the number already points at this URL", file=out)
    elif dry_run:
        print(f"dry run: nothing was changed ({len(changing)} field(s) would be)", file=out)
    else:
        print(f"updated {len(changing)} field(s)", file=out)
    if sms:
        print(
            "Message status callbacks are set per message, not per number: send with "
            f"status_callback={url!r} (or set it on your Messaging Service).",
            file=out,
        )


def _shown(value: object) -> str:
    """A setting's value as the table shows it."""
    return str(value) if value else "(empty)"


_EXAMPLES = """\
examples:
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/ --dry-run
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/ --sms --voice
  twilio-events configure --event-streams --url https://abc.ngrok.app/ --dry-run

Needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN. Message status callbacks are not a phone-number setting:
pass status_callback=URL when you send a message (or set it on your Messaging Service). --event-streams
makes a webhook sink for URL/events (method POST, in batches) and subscribes it to the message statuses,
incoming messages and call status events.
"""

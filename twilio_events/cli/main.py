"""The `twilio-events` command: its arguments, their environment variables, and each command's wiring."""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import __version__
from .output import CommandError

VALIDATE_SIGNATURE_ENV = "TWILIO_EVENTS_VALIDATE_SIGNATURE"  # read by TwilioEvents() itself
RELOAD_ENV = "TWILIO_EVENTS_RELOAD"
DEFAULT_PORT = 8090
PLACEHOLDER_AUTH_TOKEN = "no-auth-token-given"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line `argv` (default: the process's) and return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "command", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    args.argv = argv
    try:
        return command(args)
    except CommandError as exc:
        print(f"twilio-events: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


# --- environment -------------------------------------------------------------------------------------


def env(name: str) -> str | None:
    """The variable's value, or None when it is unset or blank."""
    value = os.environ.get(name, "").strip()
    return value or None


def env_flag(name: str) -> bool | None:
    """A yes/no variable: None when unset; 1/true/yes/on or 0/false/no/off."""
    value = env(name)
    if value is None:
        return None
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise CommandError(f"{name}={value!r}: expected true or false")


def split_list(values: Sequence[str] | None) -> list[str]:
    """Repeated options and comma- or space-separated lists, flattened."""
    return [item for value in values or () for item in re.split(r"[,\s]+", value) if item]


def ports(values: Sequence[str], source: str) -> list[int]:
    """Port numbers, each 1-65535."""
    result = []
    for value in split_list(values):
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise CommandError(f"{source}: {value!r} is not a port number (1-65535)")
        result.append(int(value))
    return result


# --- run ---------------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """`twilio-events run TARGET`."""
    from . import run as runserver

    target = args.target or env("TWILIO_EVENTS_APP")
    if not target:
        raise CommandError("no TARGET: give `module:app` or a path to a .py file (or set TWILIO_EVENTS_APP)")
    reload = args.reload or bool(env_flag(RELOAD_ENV))
    log_level = (args.log_level or env("TWILIO_EVENTS_LOG_LEVEL") or "info").lower()
    if log_level not in LOG_LEVELS:
        raise CommandError(f"TWILIO_EVENTS_LOG_LEVEL={log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    if args.port:
        listen_ports = ports(args.port, "--port")
    else:
        listen_ports = ports([env("TWILIO_EVENTS_PORT") or ""], "TWILIO_EVENTS_PORT")
    names = split_list(args.listener_name or [env("TWILIO_EVENTS_LISTENER_NAME") or ""])
    if args.no_validate_signature:
        os.environ[VALIDATE_SIGNATURE_ENV] = "false"  # before the target is imported: the app reads it
    if reload:
        from .loader import is_path, split_target

        location = split_target(target)[0]
        watch = Path(location).resolve().parent if is_path(location) else Path.cwd()
        child_args = [arg for arg in args.argv if arg != "--reload"]
        return runserver.serve_with_reload(child_args, watch, RELOAD_ENV)

    from .loader import load_app

    app = load_app(target)
    public_url = args.public_url or env("TWILIO_EVENTS_PUBLIC_URL")
    if public_url:
        app.public_url = public_url
    trust = True if args.trust_forwarded_headers else env_flag("TWILIO_EVENTS_TRUST_FORWARDED_HEADERS")
    if trust is not None:
        app.trust_forwarded_headers = trust
    app.listeners = runserver.listeners_from_options(
        app.listeners, listen_ports, names, args.host or env("TWILIO_EVENTS_HOST")
    )
    runserver.check_ports_free(app.listeners)
    print(runserver.summary(app, target), flush=True)
    if not app.validate_signature:
        print(
            "\n*** WARNING: X-Twilio-Signature validation is OFF. Anyone who can reach this service can fake "
            "Twilio callbacks: use this for local development only. ***\n",
            file=sys.stderr,
            flush=True,
        )
    elif args.no_validate_signature:
        print(
            "twilio-events: warning: the app sets validate_signature=True itself, so signatures are still "
            "validated despite --no-validate-signature",
            file=sys.stderr,
            flush=True,
        )
    logging.getLogger("twilio_events").setLevel(log_level.upper())
    try:
        app.run(log_level=log_level)
    except SystemExit as exc:
        if exc.code:
            raise CommandError("the service could not start (the reason is logged above)") from None
    return 0


# --- simulate ----------------------------------------------------------------------------------------


def simulate_command(args: argparse.Namespace) -> int:
    """`twilio-events simulate call|sms|inbound-sms`."""
    from ..payloads import call_payload, sms_payload
    from . import simulate

    auth_token = args.auth_token or env("TWILIO_AUTH_TOKEN")
    if not auth_token:
        auth_token = PLACEHOLDER_AUTH_TOKEN
        print(
            "twilio-events: note: no auth token (--auth-token / TWILIO_AUTH_TOKEN), so the callbacks are "
            "signed with a placeholder: only a service running without signature validation accepts them",
            file=sys.stderr,
        )
    url = args.url or env("TWILIO_EVENTS_URL") or default_url()
    lifecycle = getattr(args, "lifecycle", False)
    if not lifecycle:
        for option in ("outcome", "out_of_order"):
            if getattr(args, option, None):
                raise CommandError(f"--{option.replace('_', '-')} goes with --lifecycle")
    overrides = _overrides(args)
    if args.kind == "call":
        payloads = (
            simulate.call_lifecycle(args.outcome or "completed", **overrides)
            if lifecycle
            else [call_payload(args.status, **overrides)]
        )
    elif args.kind == "sms":
        payloads = (
            simulate.sms_lifecycle(args.outcome or "delivered", **overrides)
            if lifecycle
            else [sms_payload(args.status, **overrides)]
        )
    else:
        payloads = [simulate.inbound_sms(args.body, args.media or (), **overrides)]
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    shuffled = getattr(args, "out_of_order", False)
    sends = simulate.deliveries(
        payloads, rng=random.Random(seed), out_of_order=shuffled, duplicate=args.duplicate
    )
    if shuffled or args.duplicate:
        how = " and ".join(
            w for w, on in (("out of order", shuffled), ("with repeats", args.duplicate)) if on
        )
        print(f"delivering {how}, as Twilio can (replay this order with --seed {seed})")
    if args.wait:
        simulate.wait_until_up(url, args.wait)
    return simulate.send_all(
        url,
        sends,
        auth_token=auth_token,
        public_url=args.public_url or env("TWILIO_EVENTS_PUBLIC_URL"),
        timeout=args.timeout,
        delay=args.delay,
        verbose=args.verbose,
        show_reply=args.kind == "inbound-sms",
        out=sys.stdout,
    )


def default_url() -> str:
    """The local URL `run` serves by default: the first TWILIO_EVENTS_PORT, else 8090."""
    configured = ports([env("TWILIO_EVENTS_PORT") or ""], "TWILIO_EVENTS_PORT")
    return f"http://127.0.0.1:{configured[0] if configured else DEFAULT_PORT}/"


def _overrides(args: argparse.Namespace) -> dict[str, str | None]:
    overrides: dict[str, str | None] = {}
    account_sid = args.account_sid or env("TWILIO_ACCOUNT_SID")
    if account_sid:
        overrides["AccountSid"] = account_sid
    if args.from_:
        overrides["From"] = args.from_
        if args.kind == "call":
            overrides["Caller"] = args.from_  # a call repeats From and To as Caller and Called
    if args.to:
        overrides["To"] = args.to
        if args.kind == "call":
            overrides["Called"] = args.to
    for item in args.param or ():
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(f"--param {item!r}: expected NAME=VALUE")
        overrides[name] = value
    return overrides


# --- configure ---------------------------------------------------------------------------------------


def configure_command(args: argparse.Namespace) -> int:
    """`twilio-events configure --number ... --url ...`."""
    from .configure import client, configure

    number = args.number or env("TWILIO_PHONE_NUMBER")
    url = args.url or env("TWILIO_EVENTS_PUBLIC_URL")
    if not number:
        raise CommandError("which number? pass --number +15551234567 (or set TWILIO_PHONE_NUMBER)")
    if not url:
        raise CommandError("which URL? pass --url https://abc.ngrok.app/ (or set TWILIO_EVENTS_PUBLIC_URL)")
    rest = client(
        args.account_sid or env("TWILIO_ACCOUNT_SID"),
        args.auth_token or env("TWILIO_AUTH_TOKEN"),
        args.api_base_url or env("TWILIO_EVENTS_API_BASE_URL"),
    )
    return configure(
        rest,
        number,
        url,
        sms=args.sms or not args.voice,
        voice=args.voice,
        dry_run=args.dry_run,
        out=sys.stdout,
    )


# --- inbox -------------------------------------------------------------------------------------------


def inbox_command(args: argparse.Namespace) -> int:
    """`twilio-events inbox stats|list|retry|purge`."""
    from . import inbox

    url = args.store or env(inbox.STORE_ENV)
    if args.action == "stats":
        return inbox.stats(url)
    if args.action == "list":
        return inbox.list_dead(url, args.dead, args.limit)
    if args.action == "retry":
        return inbox.retry(url, args.id, args.all_dead)
    return inbox.purge(url, args.dead)


# --- the parser --------------------------------------------------------------------------------------

_FORMATTER = argparse.RawDescriptionHelpFormatter


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: `run`, `simulate` (call, sms, inbound-sms), `configure` and `inbox`."""
    parser = argparse.ArgumentParser(
        prog="twilio-events",
        description="Run a TwilioEvents service, send it simulated Twilio callbacks, point a Twilio "
        "phone number at it, and look into its durable store.",
        epilog=_MAIN_EXAMPLES,
        formatter_class=_FORMATTER,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"twilio-events {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_run(commands)
    _add_simulate(commands)
    _add_configure(commands)
    _add_inbox(commands)
    return parser


def _subparser(commands: Any, name: str, help: str, epilog: str, **kwargs: Any) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=help,
        epilog=epilog,
        formatter_class=_FORMATTER,
        allow_abbrev=False,
        **kwargs,
    )
    return parser


def _add_run(commands: Any) -> None:
    run = _subparser(commands, "run", "Serve a TwilioEvents app on one or more ports.", _RUN_EXAMPLES)
    run.set_defaults(command=run_command)
    run.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="module:attr, or a path to a .py file (the TwilioEvents app in it is found when there is "
        "just one), e.g. examples/call_status.py or myproject.hooks:app (env TWILIO_EVENTS_APP)",
    )
    run.add_argument(
        "--host", help="address to listen on (env TWILIO_EVENTS_HOST; default: the app's, 0.0.0.0)"
    )
    run.add_argument(
        "--port",
        action="append",
        metavar="PORT",
        help="port to listen on; repeat it or give a list (8090,8091) for several listeners "
        "(env TWILIO_EVENTS_PORT; default: the app's listeners, 8090)",
    )
    run.add_argument(
        "--listener-name",
        action="append",
        metavar="NAME",
        help="name of each listener in the logs, in --port order; later ports are named NAME-PORT "
        "(env TWILIO_EVENTS_LISTENER_NAME; default twilioListener)",
    )
    run.add_argument(
        "--public-url",
        metavar="URL",
        help="the base URL Twilio calls when the service sits behind a proxy or tunnel, e.g. "
        "https://abc.ngrok.app; signatures are checked for it (env TWILIO_EVENTS_PUBLIC_URL)",
    )
    run.add_argument(
        "--trust-forwarded-headers",
        action="store_true",
        help="rebuild the URL Twilio called from Forwarded / X-Forwarded-* headers; only behind a proxy "
        "that sets them (env TWILIO_EVENTS_TRUST_FORWARDED_HEADERS=true)",
    )
    run.add_argument(
        "--no-validate-signature",
        action="store_true",
        help="DANGEROUS: accept callbacks without a valid X-Twilio-Signature; local development only "
        f"(env {VALIDATE_SIGNATURE_ENV}=false)",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help=f"restart when a .py file next to the target changes; for development (env {RELOAD_ENV}=true)",
    )
    run.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="how much to log (env TWILIO_EVENTS_LOG_LEVEL; default info)",
    )


def _add_simulate(commands: Any) -> None:
    simulate = _subparser(
        commands,
        "simulate",
        "Send Twilio-realistic, signed callbacks to a running service and show its answers.",
        _SIMULATE_EXAMPLES,
    )
    kinds = simulate.add_subparsers(title="what to simulate", metavar="KIND", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--url",
        help="where the service listens (env TWILIO_EVENTS_URL; default http://127.0.0.1:PORT/ with the "
        f"first TWILIO_EVENTS_PORT, else {DEFAULT_PORT})",
    )
    common.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="the auth token to sign with, the service's (env TWILIO_AUTH_TOKEN; without one, a placeholder "
        "only a service without signature validation accepts)",
    )
    common.add_argument(
        "--account-sid",
        metavar="SID",
        help="the AccountSid to send (env TWILIO_ACCOUNT_SID; default a test SID, AC000...)",
    )
    common.add_argument(
        "--public-url",
        metavar="URL",
        help="sign for this base URL, as Twilio does when it calls the service through a proxy or tunnel, "
        "and send the X-Forwarded-Proto/-Host a proxy would add (env TWILIO_EVENTS_PUBLIC_URL)",
    )
    common.add_argument("--from", dest="from_", metavar="NUMBER", help="the From number")
    common.add_argument("--to", metavar="NUMBER", help="the To number")
    common.add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="set (or add) one more parameter in every callback; repeatable",
    )
    common.add_argument(
        "--duplicate", action="store_true", help="deliver some callbacks twice, as Twilio can"
    )
    common.add_argument(
        "--seed", type=int, help="random seed for --out-of-order / --duplicate, to replay an order"
    )
    common.add_argument(
        "--delay", type=float, default=0.0, metavar="SECONDS", help="pause between callbacks (default 0)"
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="give up on an answer after this long (default 15, as Twilio)",
    )
    common.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the service to accept connections (default 0)",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="also print every parameter sent")
    lifecycle_help = "send the whole lifecycle, as Twilio does"
    from ..events import CallStatus, SmsStatus  # light: enums only

    call = kinds.add_parser(
        "call",
        parents=[common],
        help="call status callbacks",
        description="Send call status callbacks (StatusCallback of a call, every progress event subscribed).",
        epilog=_CALL_EXAMPLES,
        formatter_class=_FORMATTER,
        allow_abbrev=False,
    )
    call.set_defaults(command=simulate_command, kind="call")
    which = call.add_mutually_exclusive_group(required=True)
    which.add_argument("--status", choices=[s.value for s in CallStatus], help="send one callback")
    which.add_argument(
        "--lifecycle",
        action="store_true",
        help=lifecycle_help + ": initiated, ringing, in-progress, completed (one CallSid, SequenceNumber "
        "0-3, advancing Timestamps, CallDuration at the end)",
    )
    call.add_argument(
        "--outcome",
        choices=["completed", "busy", "no-answer", "failed", "canceled"],
        help="how the call ends (default completed)",
    )
    call.add_argument(
        "--out-of-order", action="store_true", help="deliver the lifecycle shuffled, as Twilio can"
    )

    sms = kinds.add_parser(
        "sms",
        parents=[common],
        help="message status callbacks",
        description="Send status callbacks of an outgoing message (its StatusCallback).",
        epilog=_SMS_EXAMPLES,
        formatter_class=_FORMATTER,
        allow_abbrev=False,
    )
    sms.set_defaults(command=simulate_command, kind="sms")
    which = sms.add_mutually_exclusive_group(required=True)
    which.add_argument("--status", choices=[s.value for s in SmsStatus], help="send one callback")
    which.add_argument(
        "--lifecycle",
        action="store_true",
        help=lifecycle_help + ": queued, sent, delivered (one MessageSid)",
    )
    sms.add_argument(
        "--outcome",
        choices=["delivered", "undelivered", "failed"],
        help="how delivery ends (default delivered); undelivered and failed carry an ErrorCode",
    )
    sms.add_argument(
        "--out-of-order", action="store_true", help="deliver the lifecycle shuffled, as Twilio can"
    )

    inbound = kinds.add_parser(
        "inbound-sms",
        parents=[common],
        help='an incoming message ("A MESSAGE COMES IN")',
        description='Send an incoming message, as Twilio does for "A MESSAGE COMES IN", and show the '
        "TwiML reply.",
        epilog=_INBOUND_EXAMPLES,
        formatter_class=_FORMATTER,
        allow_abbrev=False,
    )
    inbound.set_defaults(command=simulate_command, kind="inbound-sms")
    inbound.add_argument("--body", default="Hello", help='the message text (default "Hello")')
    inbound.add_argument(
        "--media", action="append", metavar="URL", help="an attachment's URL (MediaUrlN); repeatable"
    )


def _add_configure(commands: Any) -> None:
    configure = _subparser(
        commands,
        "configure",
        "Point a Twilio phone number's webhooks at the service (method POST) with the REST API.",
        _CONFIGURE_EXAMPLES,
    )
    configure.set_defaults(command=configure_command)
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
        help='set Messaging "A MESSAGE COMES IN" (SmsUrl); the default when --voice is not given',
    )
    configure.add_argument(
        "--voice",
        action="store_true",
        help='set Voice "CALL STATUS CHANGES" (the voice StatusCallback); add --sms to set both',
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


def _add_inbox(commands: Any) -> None:
    inbox = _subparser(
        commands,
        "inbox",
        "Look into the store of a service with durable delivery: counts, dead letters, and dead "
        "letters queued again or deleted.",
        _INBOX_EXAMPLES,
    )
    inbox.set_defaults(command=inbox_command)
    store_help = (
        "the service's store: sqlite:///path/to/file.db (relative to the current directory; "
        "sqlite:////abs/path.db for an absolute path) or redis://host:6379/0 (env TWILIO_EVENTS_STORE)"
    )
    inbox.add_argument("--store", metavar="URL", help=store_help)
    # --store is accepted after the action too; SUPPRESS keeps a value given before it
    store = argparse.ArgumentParser(add_help=False)
    store.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help=store_help)
    actions = inbox.add_subparsers(title="actions", metavar="ACTION", required=True, dest="action")

    def action(name: str, help: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(
            name,
            parents=[store],
            help=help,
            description=help,
            epilog=_INBOX_EXAMPLES,
            formatter_class=_FORMATTER,
            allow_abbrev=False,
        )
        return parser

    action("stats", "How many events are queued (waiting to run or to be retried), running and dead.")
    listing = action("list", "List the dead letters, oldest first.")
    listing.add_argument("--dead", action="store_true", help="list the dead letters (required)")
    listing.add_argument(
        "--limit", type=int, default=100, metavar="N", help="show at most N dead letters (default 100)"
    )
    retry = action("retry", "Queue dead letters again, their attempts reset; the service's workers run them.")
    retry.add_argument(
        "id", nargs="?", metavar="ID", help="the dead letter's ID, as `inbox list --dead` shows"
    )
    retry.add_argument("--all-dead", action="store_true", help="queue every dead letter again")
    purge = action("purge", "Delete every dead letter, without asking: --dead is required.")
    purge.add_argument("--dead", action="store_true", help="delete the dead letters (required)")


_MAIN_EXAMPLES = """\
examples:
  twilio-events run examples/call_status.py              serve the app on port 8090
  twilio-events simulate call --lifecycle                 send it a whole call, signed like Twilio
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/
  twilio-events inbox --store sqlite:///twilio_events.db stats

Run `twilio-events COMMAND --help` for each command's options and environment variables.
"""

_RUN_EXAMPLES = """\
examples:
  twilio-events run examples/call_status.py
  twilio-events run myproject.hooks:app --port 8090 --port 8091
  twilio-events run app.py --public-url https://abc.ngrok.app --log-level debug
  TWILIO_EVENTS_PORT=9000 twilio-events run app.py --reload
  twilio-events run app.py --no-validate-signature       (local only: anyone could fake callbacks)

Every option can come from its environment variable instead; an option given on the command line, or
its variable, overrides what the app itself sets. Signature validation needs TWILIO_AUTH_TOKEN.
"""

_SIMULATE_EXAMPLES = """\
examples:
  twilio-events simulate call --lifecycle
  twilio-events simulate call --status ringing
  twilio-events simulate sms --lifecycle --outcome undelivered
  twilio-events simulate inbound-sms --body "hi" --media https://example.com/cat.jpg

Each callback is signed with TWILIO_AUTH_TOKEN (or --auth-token). Exit code 0 when every callback was
answered 2xx, 1 otherwise.
"""

_CALL_EXAMPLES = """\
examples:
  twilio-events simulate call --status ringing
  twilio-events simulate call --lifecycle
  twilio-events simulate call --lifecycle --outcome busy --out-of-order --duplicate
  twilio-events simulate call --lifecycle --url http://127.0.0.1:8091/ --public-url https://abc.ngrok.app
"""

_SMS_EXAMPLES = """\
examples:
  twilio-events simulate sms --status delivered
  twilio-events simulate sms --lifecycle
  twilio-events simulate sms --lifecycle --outcome failed --out-of-order
"""

_INBOUND_EXAMPLES = """\
examples:
  twilio-events simulate inbound-sms --body "hi"
  twilio-events simulate inbound-sms --body "look" --media https://example.com/cat.jpg --from +14155550123
"""

_CONFIGURE_EXAMPLES = """\
examples:
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/ --dry-run
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/
  twilio-events configure --number +15551234567 --url https://abc.ngrok.app/ --sms --voice

Needs TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN. Message status callbacks are not a phone-number setting:
pass status_callback=URL when you send a message (or set it on your Messaging Service).
"""

_INBOX_EXAMPLES = """\
examples:
  twilio-events inbox --store sqlite:///twilio_events.db stats
  twilio-events inbox --store redis://localhost:6379/0 list --dead --limit 20
  export TWILIO_EVENTS_STORE=sqlite:///twilio_events.db
  twilio-events inbox retry 42                            queue dead letter 42 again
  twilio-events inbox retry --all-dead
  twilio-events inbox purge --dead                        delete every dead letter (no confirmation)

Use the store URL the service uses (TwilioEvents(store=...)); TwilioEvents(delivery="durable") without a
store keeps its events in sqlite:///twilio_events.db. Exit code 1, with one line saying why, when the
store cannot be reached or has no such dead letter.
"""

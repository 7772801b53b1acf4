"""`twilio-events simulate call|sms|inbound-sms`: send a running service Twilio-realistic, signed callbacks
and show its answers."""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from ..events import CallStatus, SmsStatus
from ..payloads import Payload, call_payload, sms_payload
from .options import DEFAULT_PORT, FORMATTER, PORT_ENV, add_command, env, ports
from .output import CommandError

PLACEHOLDER_AUTH_TOKEN = "no-auth-token-given"


def add_parser(commands: Any) -> None:
    """`simulate` and its kinds: `call`, `sms` and `inbound-sms`, each with the common options."""
    simulate = add_command(
        commands,
        "simulate",
        "Send Twilio-realistic, signed callbacks to a running service and show its answers.",
        _EXAMPLES,
    )
    kinds = simulate.add_subparsers(title="what to simulate", metavar="KIND", required=True, dest="kind")
    common = _common_options()
    lifecycle_help = "send the whole lifecycle, as Twilio does"

    call = _kind(
        kinds,
        common,
        "call",
        "call status callbacks",
        "Send call status callbacks (StatusCallback of a call, every progress event subscribed).",
        _CALL_EXAMPLES,
    )
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

    sms = _kind(
        kinds,
        common,
        "sms",
        "message status callbacks",
        "Send status callbacks of an outgoing message (its StatusCallback).",
        _SMS_EXAMPLES,
    )
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

    inbound = _kind(
        kinds,
        common,
        "inbound-sms",
        'an incoming message ("A MESSAGE COMES IN")',
        'Send an incoming message, as Twilio does for "A MESSAGE COMES IN", and show the TwiML reply.',
        _INBOUND_EXAMPLES,
    )
    inbound.add_argument("--body", default="Hello", help='the message text (default "Hello")')
    inbound.add_argument(
        "--media", action="append", metavar="URL", help="an attachment's URL (MediaUrlN); repeatable"
    )


def _kind(
    kinds: Any, common: argparse.ArgumentParser, name: str, help: str, description: str, epilog: str
) -> argparse.ArgumentParser:
    """One kind of simulated callback, with the options every kind has."""
    parser: argparse.ArgumentParser = kinds.add_parser(
        name,
        parents=[common],
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=FORMATTER,
        allow_abbrev=False,
    )
    return parser


def _common_options() -> argparse.ArgumentParser:
    """The options of every kind: where to send, how to sign, what to change, and how to deliver."""
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
        "--no-idempotency-token",
        action="store_true",
        help="send no I-Twilio-Idempotency-Token header; by default each callback carries a fresh one, "
        "and a --duplicate repeat the same one, as Twilio's retries do",
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
    return common


def execute(args: argparse.Namespace) -> int:
    """Build the callbacks, deliver them in the chosen order and report; 0 when all were answered 2xx."""
    from .callbacks import deliveries
    from .sending import send_all, wait_until_up

    auth_token = _auth_token(args)
    url = args.url or env("TWILIO_EVENTS_URL") or default_url()
    lifecycle = getattr(args, "lifecycle", False)
    if not lifecycle:
        for option in ("outcome", "out_of_order"):
            if getattr(args, option, None):
                raise CommandError(f"--{option.replace('_', '-')} goes with --lifecycle")
    payloads = _payloads(args, lifecycle, _overrides(args))
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    shuffled = getattr(args, "out_of_order", False)
    sends = deliveries(
        payloads,
        rng=random.Random(seed),
        out_of_order=shuffled,
        duplicate=args.duplicate,
        tokens=not args.no_idempotency_token,
    )
    if shuffled or args.duplicate:
        how = " and ".join(
            w for w, on in (("out of order", shuffled), ("with repeats", args.duplicate)) if on
        )
        print(f"delivering {how}, as Twilio can (replay this order with --seed {seed})")
    if args.wait:
        wait_until_up(url, args.wait)
    return send_all(
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


def _auth_token(args: argparse.Namespace) -> str:
    """The token to sign with: --auth-token, TWILIO_AUTH_TOKEN, else a placeholder (with a note)."""
    auth_token: str | None = args.auth_token or env("TWILIO_AUTH_TOKEN")
    if auth_token:
        return auth_token
    print(
        "twilio-events: note: no auth token (--auth-token / TWILIO_AUTH_TOKEN), so the callbacks are "
        "signed with a placeholder: only a service running without signature validation accepts them",
        file=sys.stderr,
    )
    return PLACEHOLDER_AUTH_TOKEN


def default_url() -> str:
    """The local URL `run` serves by default: the first TWILIO_EVENTS_PORT, else 8090."""
    configured = ports([env(PORT_ENV) or ""], PORT_ENV)
    return f"http://127.0.0.1:{configured[0] if configured else DEFAULT_PORT}/"


def _payloads(args: argparse.Namespace, lifecycle: bool, overrides: dict[str, str | None]) -> list[Payload]:
    """The callbacks of one status, a whole lifecycle or one incoming message, in Twilio's order."""
    from .callbacks import call_lifecycle, inbound_sms, sms_lifecycle

    if args.kind == "call":
        if lifecycle:
            return call_lifecycle(args.outcome or "completed", **overrides)
        return [call_payload(args.status, **overrides)]
    if args.kind == "sms":
        if lifecycle:
            return sms_lifecycle(args.outcome or "delivered", **overrides)
        return [sms_payload(args.status, **overrides)]
    return [inbound_sms(args.body, args.media or (), **overrides)]


def _overrides(args: argparse.Namespace) -> dict[str, str | None]:
    """The parameters the options set in every callback."""
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


_EXAMPLES = """\
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

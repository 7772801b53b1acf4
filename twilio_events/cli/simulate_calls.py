"""`simulate call`, `simulate sms` and `simulate inbound-sms`: a call's and a message's status callbacks,
and an incoming message."""

from __future__ import annotations

import argparse
from typing import Any

from ..events import CallStatus, SmsStatus
from ..payloads import call_payload, sms_payload
from .callbacks import Kind, call_lifecycle, inbound_sms, sms_lifecycle
from .output import CommandError

_LIFECYCLE_HELP = "send the whole lifecycle, as Twilio does"


def _call_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--status", choices=[s.value for s in CallStatus], help="send one callback")
    which.add_argument(
        "--lifecycle",
        action="store_true",
        help=_LIFECYCLE_HELP + ": initiated, ringing, in-progress, completed (one CallSid, SequenceNumber "
        "0-3, advancing Timestamps, CallDuration at the end)",
    )
    parser.add_argument(
        "--outcome",
        choices=["completed", "busy", "no-answer", "failed", "canceled"],
        help="how the call ends (default completed)",
    )


def _sms_arguments(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--status", choices=[s.value for s in SmsStatus], help="send one callback")
    which.add_argument(
        "--lifecycle",
        action="store_true",
        help=_LIFECYCLE_HELP + ": queued, sent, delivered (one MessageSid)",
    )
    parser.add_argument(
        "--outcome",
        choices=["delivered", "undelivered", "failed"],
        help="how delivery ends (default delivered); undelivered and failed carry an ErrorCode",
    )


def _inbound_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--body", default="Hello", help='the message text (default "Hello")')
    parser.add_argument(
        "--media", action="append", metavar="URL", help="an attachment's URL (MediaUrlN); repeatable"
    )


def _lifecycle_only(args: argparse.Namespace) -> None:
    """--outcome and --out-of-order describe a lifecycle: refuse them with --status."""
    if not args.lifecycle:
        for option in ("outcome", "out_of_order"):
            if getattr(args, option, None):
                raise CommandError(f"--{option.replace('_', '-')} goes with --lifecycle")


def _calls(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.lifecycle:
        return list(call_lifecycle(args.outcome or "completed"))
    return [call_payload(args.status)]


def _messages(args: argparse.Namespace) -> list[dict[str, Any]]:
    if args.lifecycle:
        return list(sms_lifecycle(args.outcome or "delivered"))
    return [sms_payload(args.status)]


CALL_KINDS = (
    Kind(
        "call",
        "call status callbacks",
        "Send call status callbacks (StatusCallback of a call, every progress event subscribed).",
        """\
examples:
  twilio-events simulate call --status ringing
  twilio-events simulate call --lifecycle
  twilio-events simulate call --lifecycle --outcome busy --out-of-order --duplicate
  twilio-events simulate call --lifecycle --url http://127.0.0.1:8091/ --public-url https://abc.ngrok.app
""",
        _calls,
        _call_arguments,
        frozenset({"param", "parties", "repeat", "shuffle"}),
        _lifecycle_only,
    ),
    Kind(
        "sms",
        "message status callbacks",
        "Send status callbacks of an outgoing message (its StatusCallback).",
        """\
examples:
  twilio-events simulate sms --status delivered
  twilio-events simulate sms --lifecycle
  twilio-events simulate sms --lifecycle --outcome failed --out-of-order
""",
        _messages,
        _sms_arguments,
        frozenset({"param", "parties", "repeat", "shuffle"}),
        _lifecycle_only,
    ),
    Kind(
        "inbound-sms",
        'an incoming message ("A MESSAGE COMES IN")',
        'Send an incoming message, as Twilio does for "A MESSAGE COMES IN", and show the TwiML reply.',
        """\
examples:
  twilio-events simulate inbound-sms --body "hi"
  twilio-events simulate inbound-sms --body "look" --media https://example.com/cat.jpg --from +14155550123
""",
        lambda args: [inbound_sms(args.body, args.media or ())],
        _inbound_arguments,
        frozenset({"param", "parties", "repeat"}),
    ),
)
"""The kinds of callback about calls and messages."""

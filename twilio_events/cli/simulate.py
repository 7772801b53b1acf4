"""`twilio-events simulate KIND`: send a running service Twilio-realistic, signed callbacks and show its
answers; the kinds are defined by family in simulate_calls.py, simulate_voice.py and simulate_streams.py."""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from .callbacks import Kind
from .options import DEFAULT_PORT, FORMATTER, PORT_ENV, add_command, env, ports
from .output import CommandError
from .simulate_calls import CALL_KINDS
from .simulate_streams import EVENT_STREAMS, send_batches
from .simulate_voice import VOICE_KINDS

PLACEHOLDER_AUTH_TOKEN = "no-auth-token-given"

KINDS: dict[str, Kind] = {kind.name: kind for kind in (*CALL_KINDS, *VOICE_KINDS, EVENT_STREAMS)}
"""Each kind of simulated callback, in the order `--help` lists them."""


def add_parser(commands: Any) -> None:
    """`simulate` and each of its kinds, with the shared options that kind takes."""
    simulate = add_command(
        commands,
        "simulate",
        "Send Twilio-realistic, signed callbacks to a running service and show its answers.",
        _EXAMPLES,
    )
    kinds = simulate.add_subparsers(title="what to simulate", metavar="KIND", required=True, dest="kind")
    groups = _option_groups()
    for kind in KINDS.values():
        chosen = ["target", *sorted(kind.options)]
        if kind.options & {"repeat", "shuffle"}:
            chosen.append("seed")
        parser: argparse.ArgumentParser = kinds.add_parser(
            kind.name,
            parents=[groups[name] for name in chosen],
            help=kind.help,
            description=kind.description,
            epilog=kind.examples,
            formatter_class=FORMATTER,
            allow_abbrev=False,
        )
        kind.arguments(parser)


def _option_groups() -> dict[str, argparse.ArgumentParser]:
    """The shared options, by group: where to send and how to sign ("target", every kind), what to set
    in every callback ("param", "parties"), and how to deliver ("repeat", "shuffle", "seed")."""
    groups = {name: argparse.ArgumentParser(add_help=False) for name in _GROUP_NAMES}
    target = groups["target"]
    target.add_argument(
        "--url",
        help="where the service listens (env TWILIO_EVENTS_URL; default http://127.0.0.1:PORT/ with the "
        f"first TWILIO_EVENTS_PORT, else {DEFAULT_PORT})",
    )
    target.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="the auth token to sign with, the service's (env TWILIO_AUTH_TOKEN; without one, a placeholder "
        "only a service without signature validation accepts)",
    )
    target.add_argument(
        "--account-sid",
        metavar="SID",
        help="the AccountSid to send (env TWILIO_ACCOUNT_SID; default a test SID, AC000...)",
    )
    target.add_argument(
        "--public-url",
        metavar="URL",
        help="sign for this base URL, as Twilio does when it calls the service through a proxy or tunnel, "
        "and send the X-Forwarded-Proto/-Host a proxy would add (env TWILIO_EVENTS_PUBLIC_URL)",
    )
    target.add_argument(
        "--delay", type=float, default=0.0, metavar="SECONDS", help="pause between requests (default 0)"
    )
    target.add_argument(
        "--timeout",
        type=float,
        default=15.0,
        metavar="SECONDS",
        help="give up on an answer after this long (default 15, as Twilio)",
    )
    target.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="first wait up to this long for the service to accept connections (default 0)",
    )
    target.add_argument("-v", "--verbose", action="store_true", help="also print everything sent")
    groups["param"].add_argument(
        "--param",
        action="append",
        metavar="NAME=VALUE",
        help="set (or add) one more parameter in every callback; repeatable",
    )
    groups["parties"].add_argument("--from", dest="from_", metavar="NUMBER", help="the From number")
    groups["parties"].add_argument("--to", metavar="NUMBER", help="the To number")
    repeat = groups["repeat"]
    repeat.add_argument(
        "--duplicate", action="store_true", help="deliver some callbacks twice, as Twilio can"
    )
    repeat.add_argument(
        "--no-idempotency-token",
        action="store_true",
        help="send no I-Twilio-Idempotency-Token header; by default each callback carries a fresh one, "
        "and a --duplicate repeat the same one, as Twilio's retries do",
    )
    groups["shuffle"].add_argument(
        "--out-of-order", action="store_true", help="deliver the callbacks shuffled, as Twilio can"
    )
    groups["seed"].add_argument(
        "--seed", type=int, help="random seed for --out-of-order / --duplicate, to replay an order"
    )
    return groups


_GROUP_NAMES = ("target", "param", "parties", "repeat", "shuffle", "seed")


def execute(args: argparse.Namespace) -> int:
    """Build the callbacks, deliver them in the chosen order and report; 0 when all were answered 2xx."""
    from .callbacks import apply_options, deliveries
    from .sending import Target, send_all, wait_until_up

    kind = KINDS[args.kind]
    kind.check(args)
    target = Target(
        url=args.url or env("TWILIO_EVENTS_URL") or default_url(),
        auth_token=_auth_token(args),
        public_url=args.public_url or env("TWILIO_EVENTS_PUBLIC_URL"),
        timeout=args.timeout,
        delay=args.delay,
        verbose=args.verbose,
    )
    seed = args.seed if getattr(args, "seed", None) is not None else random.randrange(2**32)
    shuffled, duplicate = getattr(args, "out_of_order", False), getattr(args, "duplicate", False)
    if shuffled or duplicate:
        how = " and ".join(w for w, on in (("out of order", shuffled), ("with repeats", duplicate)) if on)
        print(f"delivering {how}, as Twilio can (replay this order with --seed {seed})")
    if kind is EVENT_STREAMS:
        events = kind.build(args)
        if args.wait:
            wait_until_up(target.url, args.wait)
        return send_batches(target, args, events, random.Random(seed), sys.stdout)
    overrides = _overrides(args)
    payloads = [apply_options(payload, overrides) for payload in kind.build(args)]
    sends = deliveries(
        payloads,
        rng=random.Random(seed),
        out_of_order=shuffled,
        duplicate=duplicate,
        tokens=not getattr(args, "no_idempotency_token", False),
    )
    if args.wait:
        wait_until_up(target.url, args.wait)
    return send_all(target, sends, sys.stdout)


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


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    """The parameters the options set in every callback (the parties only in those that name them)."""
    overrides: dict[str, str] = {}
    account_sid = args.account_sid or env("TWILIO_ACCOUNT_SID")
    if account_sid:
        overrides["AccountSid"] = account_sid
    if getattr(args, "from_", None):
        overrides["From"] = overrides["Caller"] = args.from_  # a call repeats From and To as Caller, Called
    if getattr(args, "to", None):
        overrides["To"] = overrides["Called"] = args.to
    for item in getattr(args, "param", None) or ():
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
  twilio-events simulate recorded-call
  twilio-events simulate conference --out-of-order --duplicate
  twilio-events simulate amd --answered-by machine_end_beep
  twilio-events simulate ivr --digits 2
  twilio-events simulate event-streams --duplicate

Each callback is signed with TWILIO_AUTH_TOKEN (or --auth-token). Exit code 0 when every callback was
answered 2xx, 1 otherwise.
"""

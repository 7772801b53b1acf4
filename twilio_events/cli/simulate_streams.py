"""`simulate event-streams`: a batch of CloudEvents posted to the service's Event Streams sink as one JSON
request, signed as Twilio signs it."""

from __future__ import annotations

import argparse
import json
import random
import time
from typing import Any, TextIO

from ..payloads import TEST_ACCOUNT_SID, new_sid
from ..payloads_streams import (
    CloudEventDict,
    call_status_cloudevent,
    cloudevent,
    event_streams_body,
    message_status_cloudevent,
    sign_event_streams,
)
from ..streams import CloudEvent
from .callbacks import Delivery, Kind, describe
from .options import env, sink_url
from .sending import Reply, Target, exchange, indent, report, signed_url, summarise


def default_batch() -> list[CloudEventDict]:
    """A message's sent and delivered events (one MessageSid) and a call's completed event."""
    message_sid, service_sid = new_sid("SM"), new_sid("MG")
    return [
        message_status_cloudevent("sent", message_sid, messagingServiceSid=service_sid),
        message_status_cloudevent("delivered", message_sid, messagingServiceSid=service_sid),
        call_status_cloudevent("completed"),
    ]


def batch(args: argparse.Namespace) -> list[CloudEventDict]:
    """The CloudEvents to send: one per --type, else the default batch, for --account-sid's account."""
    events = [cloudevent(name, {"accountSid": TEST_ACCOUNT_SID}) for name in args.type or ()]
    events = events or default_batch()
    account_sid = args.account_sid or env("TWILIO_ACCOUNT_SID")
    return [_for_account(event, account_sid) for event in events] if account_sid else events


def _for_account(event: CloudEventDict, account_sid: str) -> CloudEventDict:
    """`event` as the account `account_sid` reports it: its source, and the AccountSid in its data."""
    event["source"] = f"/2010-04-01/Accounts/{account_sid}"
    data = event["data"]
    request = data.get("request")
    if isinstance(request, dict) and isinstance(request.get("parameters"), dict):
        request["parameters"]["AccountSid"] = account_sid
    else:
        data["accountSid"] = account_sid
    return event


def send_batches(
    target: Target, args: argparse.Namespace, events: list[CloudEventDict], rng: random.Random, out: TextIO
) -> int:
    """POST the batch (shuffled with --out-of-order, twice with --duplicate) to the sink; 0 when every
    POST was answered 2xx."""
    if args.out_of_order and len(events) > 1:
        original = list(events)
        while events == original:
            rng.shuffle(events)
    body = event_streams_body(events)
    sink = sink_url(target.url, args.sink_path)
    local_url, _ = sign_event_streams(sink, body, target.auth_token)
    public, signature = sign_event_streams(signed_url(sink, target.public_url), body, target.auth_token)
    print(f"POST {sink}  (a JSON batch of CloudEvents, signed for {public})", file=out)
    if target.verbose:
        print(indent(json.dumps(events, indent=2)), file=out)
    headers = {"Content-Type": "application/json", "X-Twilio-Signature": signature}
    posts = 2 if args.duplicate else 1
    refused: list[Reply] = []
    for index in range(1, posts + 1):
        if index > 1 and target.delay:
            time.sleep(target.delay)
        reply = exchange(local_url, body, headers, public_url=target.public_url, timeout=target.timeout)
        repeat = " (repeat)" if index > 1 else ""
        print(f"[{index}/{posts}] batch of {len(events)} CloudEvents{repeat} -> {summarise(reply)}", file=out)
        width = max(len(event["type"]) for event in events)
        for event in events:
            print(f"      {_line(event, width)}", file=out)
        if not reply.ok:
            refused.append(reply)
        out.flush()
    return report(sink, refused, posts, "batch(es)", out)


def _line(event: CloudEventDict, width: int) -> str:
    """One event of a batch: its type and id, and the callback it reports."""
    parsed = CloudEvent(event["id"], event["type"], event["source"], event.get("time", ""), event["data"])
    params = dict(parsed.params())
    return f"{event['type']:<{width}} {event['id']}: {describe(Delivery(params))}"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--sink-path",
        default="events",
        metavar="PATH",
        help="where the sink is, below --url (default events, as the app's event_streams_path)",
    )
    parser.add_argument(
        "--type",
        action="append",
        metavar="TYPE",
        help="send one CloudEvent of this type (data: the account only) instead of the default batch, "
        "for @app.streams.on(TYPE); repeatable",
    )
    parser.add_argument(
        "--duplicate", action="store_true", help="send the batch twice, as Event Streams does on a retry"
    )


def _cloudevents(args: argparse.Namespace) -> list[dict[str, Any]]:
    return batch(args)


EVENT_STREAMS = Kind(
    "event-streams",
    "a batch of CloudEvents to the Event Streams sink",
    "Send a batch of CloudEvents to the service's Event Streams sink (<url>events), one JSON request "
    "signed as Twilio signs it (bodySHA256 in the URL): by default a message's sent and delivered events "
    "and a call's completed event.",
    """\
examples:
  twilio-events simulate event-streams
  twilio-events simulate event-streams --duplicate --out-of-order
  twilio-events simulate event-streams --type com.twilio.voice.insights.call-summary.complete
""",
    _cloudevents,
    _arguments,
    frozenset({"shuffle"}),
)
"""The one kind that posts JSON to the sink rather than a form to the webhook URL."""

"""`twilio-events configure --event-streams`: an Event Streams webhook sink for the service's sink URL and a
subscription of it to the call and message status events, created (or reused) with the events v1 API."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from .output import table
from .twilio_api import twilio_errors

if TYPE_CHECKING:
    from twilio.rest import Client

MESSAGE_STATUSES = ("queued", "sent", "delivered", "undelivered", "failed", "read")
CALL_EVENTS = ("initiated", "ringing", "answered", "completed")
STATUS_EVENT_TYPES = (
    *(f"com.twilio.messaging.message.{status}" for status in MESSAGE_STATUSES),
    "com.twilio.messaging.inbound-message.received",
    *(f"com.twilio.voice.status-callback.call.{event}" for event in CALL_EVENTS),
)
"""The event types the subscription takes, each at its latest schema version: what app.sms and app.call
receive (a voice event is reported only for a call created with statusCallbackEvent asking for it)."""
SINK_DESCRIPTION = "twilio_events webhook sink"
SUBSCRIPTION_DESCRIPTION = "twilio_events: call and message statuses"


@dataclass(slots=True)
class Plan:
    """What exists for this destination, and what is (or would be) created."""

    destination: str
    sink: Any = None
    subscription: Any = None
    subscribed: frozenset[str] = frozenset()
    created: tuple[str, ...] = ()

    @property
    def missing(self) -> list[str]:
        """The status event types the subscription lacks, in STATUS_EVENT_TYPES' order."""
        return [name for name in STATUS_EVENT_TYPES if name not in self.subscribed]

    def sink_configuration(self) -> dict[str, Any]:
        """The webhook sink's configuration: the destination, POST, and events in batches."""
        return {"destination": self.destination, "method": "POST", "batch_events": True}


def configure_event_streams(rest: Client, destination: str, *, dry_run: bool, out: TextIO) -> int:
    """Make sure a webhook sink posts to `destination` and is subscribed to every status event type,
    reusing what exists; print what was found and done (or, with `dry_run`, what would be)."""
    with twilio_errors():
        plan = _look(rest, destination)
        missing = plan.missing
        if not dry_run:
            _apply(rest, plan, missing)
    _show(rest, plan, missing, dry_run=dry_run, out=out)
    return 0


def _look(rest: Client, destination: str) -> Plan:
    """The webhook sink already posting to `destination`, its subscription and the types it takes."""
    plan = Plan(destination)
    for sink in rest.events.v1.sinks.list(limit=1000):
        configuration = sink.sink_configuration or {}
        if sink.sink_type == "webhook" and configuration.get("destination") == destination:
            plan.sink = sink
            break
    if plan.sink is None:
        return plan
    subscriptions = rest.events.v1.subscriptions.list(sink_sid=plan.sink.sid, limit=1000)
    if subscriptions:
        # The one of ours when there are several, else the first.
        ours = [s for s in subscriptions if s.description == SUBSCRIPTION_DESCRIPTION]
        plan.subscription = (ours or subscriptions)[0]
        events = rest.events.v1.subscriptions(plan.subscription.sid).subscribed_events.list(limit=1000)
        plan.subscribed = frozenset(str(event.type) for event in events)
    return plan


def _apply(rest: Client, plan: Plan, missing: list[str]) -> None:
    """Create the sink, the subscription or the subscribed event types that are missing."""
    created = []
    if plan.sink is None:
        plan.sink = rest.events.v1.sinks.create(
            description=SINK_DESCRIPTION, sink_configuration=plan.sink_configuration(), sink_type="webhook"
        )
        created.append("sink")
    if plan.subscription is None:
        plan.subscription = rest.events.v1.subscriptions.create(
            description=SUBSCRIPTION_DESCRIPTION,
            sink_sid=plan.sink.sid,
            types=[{"type": name} for name in missing],
        )
        created.append("subscription")
    elif missing:
        subscribed_events = rest.events.v1.subscriptions(plan.subscription.sid).subscribed_events
        for name in missing:
            subscribed_events.create(type=name)
    plan.created = tuple(created)


def _show(rest: Client, plan: Plan, missing: list[str], *, dry_run: bool, out: TextIO) -> None:
    """The sink, the subscription and each event type: found, created or to be created."""
    new = "would be created" if dry_run else "created"

    def state(resource: Any, name: str) -> tuple[str, str]:
        if resource is None:
            return "(new)", new
        return str(resource.sid), new if name in plan.created else "found, reused"

    sink_sid, sink_state = state(plan.sink, "sink")
    subscription_sid, subscription_state = state(plan.subscription, "subscription")
    status = f", status {plan.sink.status}" if plan.sink is not None and plan.sink.status else ""
    print(f"Event Streams of account {rest.account_sid}", file=out)
    rows = [
        ["sink", sink_sid, sink_state, f"webhook, POST {plan.destination} in batches{status}"],
        ["subscription", subscription_sid, subscription_state, repr(SUBSCRIPTION_DESCRIPTION)],
    ]
    print(table(["RESOURCE", "SID", "STATE", "WHAT"], rows), file=out)
    print(file=out)
    added = "would be added" if dry_run else "added"
    types = [[name, added if name in missing else "already subscribed"] for name in STATUS_EVENT_TYPES]
    print(table(["EVENT TYPE", "IN THE SUBSCRIPTION"], types), file=out)
    if not missing and plan.sink is not None:
        print("nothing to change: the sink and its subscription are in place", file=out)
    elif dry_run:
        print(f"dry run: nothing was changed ({len(missing)} event type(s) would be subscribed)", file=out)
    else:
        print(
            f"subscribed {len(missing)} event type(s); Event Streams now posts them to {plan.destination}",
            file=out,
        )

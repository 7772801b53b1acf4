"""Simulated Twilio callbacks: whole lifecycles built from the `testing` factories, signed and sent over HTTP.

The payloads come from `twilio_events.testing`, so the command and users' tests send the same thing.
"""

from __future__ import annotations

import http.client
import mimetypes
import random
import re
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import TextIO
from urllib.parse import urlencode, urlsplit

from ..events import CallStatus, SmsStatus
from ..payloads import Payload, call_payload, inbound_sms_payload, new_sid, sign, sms_payload
from .output import CommandError, one_line

Overrides = Mapping[str, str | None]

CALL_LIFECYCLES: dict[str, tuple[CallStatus, ...]] = {
    "completed": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.IN_PROGRESS, CallStatus.COMPLETED),
    "busy": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.BUSY),
    "no-answer": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.NO_ANSWER),
    "canceled": (CallStatus.INITIATED, CallStatus.RINGING, CallStatus.CANCELED),
    "failed": (CallStatus.INITIATED, CallStatus.FAILED),
}
"""The statuses Twilio reports, in order, for each way a call ends (every progress event subscribed)."""

SMS_LIFECYCLES: dict[str, tuple[SmsStatus, ...]] = {
    "delivered": (SmsStatus.QUEUED, SmsStatus.SENT, SmsStatus.DELIVERED),
    "undelivered": (SmsStatus.QUEUED, SmsStatus.SENT, SmsStatus.UNDELIVERED),
    "failed": (SmsStatus.QUEUED, SmsStatus.FAILED),
}
"""The status callbacks of an outgoing message sent through a Messaging Service, for each ending."""

# Seconds after the call is created at which each status is reported: answered after 5 s of ringing, and
# hung up 42 s later (the factory's CallDuration for a completed call).
_CALL_SECONDS = {
    CallStatus.INITIATED: 0,
    CallStatus.RINGING: 1,
    CallStatus.IN_PROGRESS: 6,
    CallStatus.COMPLETED: 48,
    CallStatus.BUSY: 4,
    CallStatus.NO_ANSWER: 31,
    CallStatus.CANCELED: 9,
    CallStatus.FAILED: 1,
}
_SIP_RESPONSE_CODES = {CallStatus.BUSY: "486", CallStatus.FAILED: "404"}

_XML_DECLARATION = re.compile(r"^<\?xml[^>]*\?>\s*")

TWILIO_TIMEOUT = 15.0
"""Seconds Twilio waits for a whole response before it gives up on a webhook."""


def call_lifecycle(outcome: str = "completed", **overrides: str | None) -> list[Payload]:
    """A call's status callbacks as Twilio sends them: one CallSid, SequenceNumber 0, 1, ..., and
    Timestamps that advance, ending in `outcome` (completed, busy, no-answer, canceled or failed)."""
    start = datetime.now(UTC)
    shared: dict[str, str | None] = {"CallSid": new_sid("CA"), **overrides}
    payloads = []
    for sequence, status in enumerate(CALL_LIFECYCLES[outcome]):
        step: dict[str, str | None] = {
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(start + timedelta(seconds=_CALL_SECONDS[status])),
        }
        if status in _SIP_RESPONSE_CODES:
            step["SipResponseCode"] = _SIP_RESPONSE_CODES[status]
        payloads.append(call_payload(status, **(step | shared)))
    return payloads


def sms_lifecycle(outcome: str = "delivered", **overrides: str | None) -> list[Payload]:
    """An outgoing message's status callbacks: one MessageSid, queued -> sent -> `outcome` (delivered or
    undelivered), or queued -> failed; failed and undelivered carry an ErrorCode."""
    sid = new_sid("SM")
    shared: dict[str, str | None] = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessagingServiceSid": new_sid("MG"),
        **overrides,
    }
    return [sms_payload(status, **shared) for status in SMS_LIFECYCLES[outcome]]


def inbound_sms(body: str, media_urls: Sequence[str] = (), **overrides: str | None) -> Payload:
    """An incoming message with `body` and one attachment per URL (content type guessed from the URL)."""
    media = [(url, mimetypes.guess_type(urlsplit(url).path)[0] or "image/jpeg") for url in media_urls]
    return inbound_sms_payload(body, media, **overrides)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST of a callback; `repeat` marks a callback that was already delivered once."""

    params: Payload
    repeat: bool = False


def deliveries(
    payloads: Sequence[Payload], *, rng: random.Random, out_of_order: bool = False, duplicate: bool = False
) -> list[Delivery]:
    """`payloads` in an order Twilio may really deliver them: shuffled, and/or with repeats (one or more)."""
    order = list(payloads)
    if duplicate and order:
        repeated = [p for p in order if rng.random() < 0.5] or [rng.choice(order)]
        for payload in repeated:
            order.insert(order.index(payload) + 1, payload)
    if out_of_order and len({id(p) for p in order}) > 1:
        original = list(order)
        while order == original:
            rng.shuffle(order)
    seen: set[int] = set()
    result = []
    for payload in order:
        result.append(Delivery(payload, repeat=id(payload) in seen))
        seen.add(id(payload))
    return result


@dataclass(frozen=True, slots=True)
class Reply:
    """What the service answered."""

    status: int
    reason: str
    content_type: str
    body: str
    seconds: float

    @property
    def ok(self) -> bool:
        """True for a 2xx, which is all Twilio asks of a callback."""
        return 200 <= self.status < 300


def signed_url(url: str, public_url: str | None = None) -> str:
    """The URL Twilio signs: `url`, or `public_url` followed by the path and query of `url`."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    base = public_url.rstrip("/") if public_url else f"{parts.scheme}://{parts.netloc}"
    return base + target


def post(
    url: str,
    params: Payload,
    *,
    auth_token: str,
    public_url: str | None = None,
    timeout: float = TWILIO_TIMEOUT,
) -> Reply:
    """POST `params` form-encoded to `url` with the X-Twilio-Signature Twilio would compute.

    With `public_url`, sign for the URL Twilio would have called, and send the X-Forwarded-Proto /
    X-Forwarded-Host a proxy in front of the service would add.
    """
    parts = urlsplit(url)
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": "TwilioProxy/1.1",
        "X-Twilio-Signature": sign(signed_url(url, public_url), params, auth_token),
    }
    if public_url:
        public = urlsplit(public_url)
        headers["X-Forwarded-Proto"] = public.scheme
        headers["X-Forwarded-Host"] = public.netloc
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.netloc, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.perf_counter()
    try:
        connection.request("POST", target, body=urlencode(params), headers=headers)
        response = connection.getresponse()
        body = response.read().decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        raise CommandError(_unreachable(url, exc, timeout)) from None
    finally:
        connection.close()
    return Reply(
        status=response.status,
        reason=response.reason,
        content_type=response.getheader("Content-Type", ""),
        body=body,
        seconds=time.perf_counter() - started,
    )


def _unreachable(url: str, exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer from {url} within {timeout:g} s (Twilio gives up after {TWILIO_TIMEOUT:g} s)"
    if isinstance(exc, ConnectionRefusedError):
        return (
            f"cannot reach {url}: connection refused. Is the service running? "
            "Start it with `twilio-events run app.py` (or `make run`), or pass --url"
        )
    if isinstance(exc, socket.gaierror):
        return f"cannot reach {url}: unknown host {urlsplit(url).hostname!r}"
    if isinstance(exc, (http.client.HTTPException, ConnectionError)):
        return f"{url} closed the connection without an HTTP answer ({type(exc).__name__})"
    return f"cannot reach {url}: {exc}"


def wait_until_up(url: str, seconds: float) -> None:
    """Return once `url`'s host accepts connections; fail after `seconds`."""
    parts = urlsplit(url)
    address = (parts.hostname or "127.0.0.1", parts.port or (443 if parts.scheme == "https" else 80))
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(address, timeout=1).close()
            return
        except OSError:
            if time.monotonic() >= deadline:
                raise CommandError(
                    f"cannot reach {url}: nothing accepted a connection within {seconds:g} s"
                ) from None
            time.sleep(0.1)


def send_all(
    url: str,
    sends: Iterable[Delivery],
    *,
    auth_token: str,
    public_url: str | None,
    timeout: float,
    delay: float,
    verbose: bool,
    show_reply: bool,
    out: TextIO,
) -> int:
    """Send every delivery in order, print one line per answer; 0 when all were 2xx, else 1."""
    sends = list(sends)
    print(f"POST {url}  (signed for {signed_url(url, public_url)})", file=out)
    refused = []
    for index, delivery in enumerate(sends, 1):
        if index > 1 and delay:
            time.sleep(delay)
        if verbose:
            for name, value in sorted(delivery.params.items()):
                print(f"      {name}={value}", file=out)
        reply = post(url, delivery.params, auth_token=auth_token, public_url=public_url, timeout=timeout)
        print(f"[{index}/{len(sends)}] {_describe(delivery)} -> {_summarise(reply, show_reply)}", file=out)
        if show_reply and reply.ok and reply.body:
            print(_indent(reply.body), file=out)
        if not reply.ok:
            refused.append(reply)
        out.flush()
    if not refused:
        print(f"{len(sends)} callback(s) sent, every one answered 2xx", file=out)
        return 0
    codes = ", ".join(sorted({str(reply.status) for reply in refused}))
    print(f"{len(refused)} of {len(sends)} callback(s) were not accepted ({codes})", file=out)
    if any(reply.status == 403 for reply in refused):
        print(
            "403: the service refused the signature or account. It must use the same auth token as this "
            "command (--auth-token / TWILIO_AUTH_TOKEN) and the same TWILIO_ACCOUNT_SID; behind a proxy, "
            "pass the public URL here with --public-url, and to `run` with --public-url or "
            "--trust-forwarded-headers.",
            file=out,
        )
    return 1


def _describe(delivery: Delivery) -> str:
    params = delivery.params
    if "CallStatus" in params:
        text = f"call {params['CallStatus']:<11} {params.get('CallSid', '')}"
        if "SequenceNumber" in params:
            text += f" seq {params['SequenceNumber']}"
    elif "MessageStatus" in params:
        text = f"sms {params['MessageStatus']:<11} {params.get('MessageSid', '')}"
        if "ErrorCode" in params:
            text += f" ErrorCode {params['ErrorCode']}"
    else:
        text = f"inbound sms {params.get('MessageSid', '')} Body {params.get('Body', '')!r}"
        if params.get("NumMedia", "0") != "0":
            text += f" with {params['NumMedia']} media"
    return text + (" (repeat)" if delivery.repeat else "")


def _summarise(reply: Reply, show_reply: bool) -> str:
    text = f"{reply.status} {reply.reason} in {reply.seconds * 1000:.1f} ms"
    body = _XML_DECLARATION.sub("", reply.body.strip())
    if body and (not reply.ok or not show_reply):
        text += f": {one_line(body)}"
    return text


def _indent(body: str) -> str:
    return "\n".join("      " + line for line in body.strip().splitlines())

"""Sending simulated callbacks over HTTP, signed as Twilio signs them, and printing what came back."""

from __future__ import annotations

import http.client
import re
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TextIO
from urllib.parse import urlencode, urljoin, urlsplit

from ..payloads import Payload, sign
from .callbacks import Delivery
from .output import CommandError, one_line

IDEMPOTENCY_TOKEN_HEADER = "I-Twilio-Idempotency-Token"
"""The header Twilio sends with each webhook request, the same on its retries of that request."""
TWILIO_TIMEOUT = 15.0
"""Seconds Twilio waits for a whole response before it gives up on a webhook."""

_XML_DECLARATION = re.compile(r"^<\?xml[^>]*\?>\s*")


@dataclass(frozen=True, slots=True)
class Reply:
    """What the service answered."""

    status: int
    reason: str
    content_type: str
    body: str
    seconds: float
    location: str = ""
    """Where a redirect points, as the Location header gives it."""

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
    idempotency_token: str | None = None,
    timeout: float = TWILIO_TIMEOUT,
) -> Reply:
    """POST `params` form-encoded to `url` with the X-Twilio-Signature Twilio would compute.

    With `public_url`, sign for the URL Twilio would have called, and send the X-Forwarded-Proto /
    X-Forwarded-Host a proxy in front of the service would add. With `idempotency_token`, send it as
    Twilio sends its I-Twilio-Idempotency-Token.
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
    if idempotency_token:
        headers[IDEMPOTENCY_TOKEN_HEADER] = idempotency_token
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
        location=response.getheader("Location", ""),
    )


def _unreachable(url: str, exc: BaseException, timeout: float) -> str:
    """Why `url` gave no HTTP answer, and what to do about it."""
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
            _show_sent(delivery, out)
        reply = post(
            url,
            delivery.params,
            auth_token=auth_token,
            public_url=public_url,
            idempotency_token=delivery.token,
            timeout=timeout,
        )
        print(f"[{index}/{len(sends)}] {_describe(delivery)} -> {_summarise(reply, show_reply)}", file=out)
        if show_reply and reply.ok and reply.body:
            print(_indent(reply.body), file=out)
        if not reply.ok:
            refused.append(reply)
        out.flush()
    if not refused:
        print(f"{len(sends)} callback(s) sent, every one answered 2xx", file=out)
        return 0
    _explain_refusals(url, refused, len(sends), out)
    return 1


def _show_sent(delivery: Delivery, out: TextIO) -> None:
    """Print the token and every parameter of one delivery, for --verbose."""
    if delivery.token:
        print(f"      {IDEMPOTENCY_TOKEN_HEADER}: {delivery.token}", file=out)
    for name, value in sorted(delivery.params.items()):
        print(f"      {name}={value}", file=out)


def _explain_refusals(url: str, refused: Sequence[Reply], sent: int, out: TextIO) -> None:
    """How many callbacks were refused, with which codes, and what to change for a 403 or a redirect."""
    codes = ", ".join(sorted({str(reply.status) for reply in refused}))
    print(f"{len(refused)} of {sent} callback(s) were not accepted ({codes})", file=out)
    if any(reply.status == 403 for reply in refused):
        print(
            "403: the service refused the signature or account. It must use the same auth token as this "
            "command (--auth-token / TWILIO_AUTH_TOKEN) and the same TWILIO_ACCOUNT_SID; behind a proxy, "
            "pass the public URL here with --public-url, and to `run` with --public-url or "
            "--trust-forwarded-headers.",
            file=out,
        )
    redirect = next((reply for reply in refused if 300 <= reply.status < 400 and reply.location), None)
    if redirect is not None:
        print(_redirect_hint(url, redirect), file=out)


def _redirect_hint(url: str, reply: Reply) -> str:
    """What to change when the service answers the callbacks with a redirect."""
    location = urljoin(url, reply.location)
    why = " (its URL ends with a slash)" if location == url + "/" else ""
    path = urlsplit(location).path
    return (
        f"{reply.status}: the service redirects {url} to {location}{why}, and handles no callback sent to "
        f"the old URL. Pass --url {location}, and give Twilio the URL with the path {path}."
    )


def _describe(delivery: Delivery) -> str:
    """One delivery as its line shows it: kind, status, SID and what sets it apart."""
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
    """An answer in one line: status, time and (unless shown in full) its body."""
    text = f"{reply.status} {reply.reason} in {reply.seconds * 1000:.1f} ms"
    body = _XML_DECLARATION.sub("", reply.body.strip())
    if body and (not reply.ok or not show_reply):
        text += f": {one_line(body)}"
    return text


def _indent(body: str) -> str:
    """A reply's body indented under its line."""
    return "\n".join("      " + line for line in body.strip().splitlines())

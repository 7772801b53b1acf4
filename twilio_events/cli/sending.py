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
from .callbacks import Delivery, answers_twiml, describe
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


@dataclass(frozen=True, slots=True)
class Target:
    """Where and how simulated callbacks are sent: the URL, the token and public URL they are signed with,
    and the pacing and detail of the output."""

    url: str
    auth_token: str
    public_url: str | None = None
    timeout: float = TWILIO_TIMEOUT
    delay: float = 0.0
    verbose: bool = False


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
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(signed_url(url, public_url), params, auth_token),
    }
    if idempotency_token:
        headers[IDEMPOTENCY_TOKEN_HEADER] = idempotency_token
    return exchange(url, urlencode(params).encode("utf-8"), headers, public_url=public_url, timeout=timeout)


def exchange(
    url: str, body: bytes, headers: dict[str, str], *, public_url: str | None, timeout: float
) -> Reply:
    """POST `body` to `url` with `headers` (and, behind `public_url`, the forwarding headers a proxy adds),
    as Twilio's webhook client does; a CommandError when no HTTP answer comes."""
    parts = urlsplit(url)
    headers = {"User-Agent": "TwilioProxy/1.1", **headers}
    if public_url:
        public = urlsplit(public_url)
        headers["X-Forwarded-Proto"] = public.scheme
        headers["X-Forwarded-Host"] = public.netloc
    connection_type = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_type(parts.netloc, timeout=timeout)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.perf_counter()
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode("utf-8", errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        raise CommandError(_unreachable(url, exc, timeout)) from None
    finally:
        connection.close()
    return Reply(
        status=response.status,
        reason=response.reason,
        content_type=response.getheader("Content-Type", ""),
        body=text,
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


def send_all(target: Target, sends: Iterable[Delivery], out: TextIO) -> int:
    """Send every delivery in order, print one line per answer (and the TwiML of a request whose answer
    Twilio executes); 0 when all were 2xx, else 1."""
    sends = list(sends)
    url, public_url = target.url, target.public_url
    print(f"POST {url}  (signed for {signed_url(url, public_url)})", file=out)
    refused = []
    for index, delivery in enumerate(sends, 1):
        if index > 1 and target.delay:
            time.sleep(target.delay)
        if target.verbose:
            _show_sent(delivery, out)
        reply = post(
            url,
            delivery.params,
            auth_token=target.auth_token,
            public_url=public_url,
            idempotency_token=delivery.token,
            timeout=target.timeout,
        )
        twiml = answers_twiml(delivery.params)
        print(f"[{index}/{len(sends)}] {describe(delivery)} -> {summarise(reply, twiml)}", file=out)
        if twiml and reply.ok and reply.body:
            print(indent(reply.body), file=out)
        if not reply.ok:
            refused.append(reply)
        out.flush()
    return report(url, refused, len(sends), "callback(s)", out)


def report(url: str, refused: Sequence[Reply], sent: int, what: str, out: TextIO) -> int:
    """The last line: every request answered 2xx (0), or which were not and what to change (1)."""
    if not refused:
        print(f"{sent} {what} sent, every one answered 2xx", file=out)
        return 0
    _explain_refusals(url, refused, sent, what, out)
    return 1


def _show_sent(delivery: Delivery, out: TextIO) -> None:
    """Print the token and every parameter of one delivery, for --verbose."""
    if delivery.token:
        print(f"      {IDEMPOTENCY_TOKEN_HEADER}: {delivery.token}", file=out)
    for name, value in sorted(delivery.params.items()):
        print(f"      {name}={value}", file=out)


def _explain_refusals(url: str, refused: Sequence[Reply], sent: int, what: str, out: TextIO) -> None:
    """How many requests were refused, with which codes, and what to change for a 403 or a redirect."""
    codes = ", ".join(sorted({str(reply.status) for reply in refused}))
    print(f"{len(refused)} of {sent} {what} were not accepted ({codes})", file=out)
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


def summarise(reply: Reply, shown_in_full: bool = False) -> str:
    """An answer in one line: status, time and (unless shown in full) its body."""
    text = f"{reply.status} {reply.reason} in {reply.seconds * 1000:.1f} ms"
    body = _XML_DECLARATION.sub("", reply.body.strip())
    if body and (not reply.ok or not shown_in_full):
        text += f": {one_line(body)}"
    return text


def indent(body: str) -> str:
    """A reply's body indented under its line."""
    return "\n".join("      " + line for line in body.strip().splitlines())

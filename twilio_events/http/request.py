"""Reading a callback request: its headers, its content type, and its body within a size and a time limit."""

from __future__ import annotations

import asyncio

from starlette.types import Receive, Scope

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
UTF8_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii"})
"""Charsets a form may declare: Twilio sends UTF-8 (and ASCII is the same bytes)."""


class Rejected(Exception):
    """A request refused before any handler ran: the status code and a message for the sender."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


class ClientDisconnected(Exception):
    """The client went away before its body arrived: there is no one to answer."""


def check_content_type(scope: Scope) -> None:
    """Refuse (415) any body that is not `application/x-www-form-urlencoded` in UTF-8."""
    content_type = header(scope, b"content-type")
    media_type, *parameters = (content_type or "").split(";")
    if media_type.strip().lower() != FORM_MEDIA_TYPE:
        shown = content_type or "no Content-Type"
        raise Rejected(415, f"Unsupported Media Type: expected {FORM_MEDIA_TYPE}, got {shown}")
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        charset = value.strip().strip('"')
        if name.strip().lower() == "charset" and charset.lower() not in UTF8_CHARSETS:
            raise Rejected(
                415,
                f"Unsupported Media Type: only UTF-8 forms are accepted, as Twilio sends them; "
                f"got charset={charset}",
            )


def check_no_upgrade(scope: Scope) -> None:
    """Refuse (400) a request that asks to switch protocols, such as `Upgrade: h2c` for HTTP/2.

    Servers may drop the body of such a request (uvicorn's httptools parser does), which would
    otherwise surface as a wrong signature; the answer closes the connection.
    """
    upgrade = header(scope, b"upgrade")
    if upgrade is None or "upgrade" not in _tokens(scope, b"connection"):
        return
    raise Rejected(
        400,
        f"Bad Request: this service does not switch protocols (Upgrade: {upgrade}); send the callback as "
        "plain HTTP/1.1, without Upgrade and HTTP2-Settings (curl: --http1.1)",
        {"Connection": "close"},
    )


async def read_body(scope: Scope, receive: Receive, limit: int, timeout: float | None = None) -> bytes:
    """The whole body; 413 as soon as it is known to exceed `limit` bytes, reading no further; 408 when
    it has not all arrived within `timeout` seconds (under any server: the app's own bound)."""
    try:
        async with asyncio.timeout(timeout):
            return await _read_body(scope, receive, limit)
    except TimeoutError:
        raise Rejected(
            408,
            f"Request Timeout: the body did not arrive within {timeout:g} s (read_timeout)",
            {"Connection": "close"},
        ) from None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    declared = header(scope, b"content-length")
    if declared is not None:
        # isdigit() alone accepts "²"; and int() refuses more than 4,300 digits
        if not (declared.isascii() and declared.isdigit() and len(declared) <= 20):
            raise Rejected(400, f"Bad Request: invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _too_large(limit: int) -> Rejected:
    return Rejected(413, f"Payload Too Large: the body exceeds the {limit}-byte limit (max_body_size)")


def _tokens(scope: Scope, name: bytes) -> set[str]:
    """The comma-separated tokens of every `name` header, lower-cased."""
    return {
        token.strip().lower()
        for key, value in scope["headers"]
        if key == name
        for token in value.decode("latin-1").split(",")
    }


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header `name` (lower-case bytes), decoded as latin-1."""
    for key, value in scope["headers"]:
        if key == name:
            decoded: str = value.decode("latin-1")
            return decoded
    return None

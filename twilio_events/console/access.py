"""Who may see the console: loopback clients, or anyone with the console's credentials when they are set."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import secrets

from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope

from ..http.request import header

_PROXY_HEADERS = (b"forwarded", b"x-forwarded-for", b"x-real-ip")
"""Headers a proxy adds: behind one, the loopback address is the proxy's, not the visitor's."""


def is_loopback(scope: Scope) -> bool:
    """True when the client is this machine (127.0.0.0/8 or ::1) and no proxy forwarded the request."""
    client = scope.get("client")
    if not client or any(header(scope, name) for name in _PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(str(client[0]))
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def names_this_machine(scope: Scope) -> bool:
    """True when the Host header is localhost or a loopback address: a page of another site whose name
    was made to resolve to 127.0.0.1 (DNS rebinding) sends its own name, and is refused."""
    host = (header(scope, b"host") or "").strip().lower()
    name = host[1:].partition("]")[0] if host.startswith("[") else host.rpartition(":")[0] or host
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def refusal(scope: Scope, credentials: tuple[str, str] | None) -> Response | None:
    """None when the request may see the console; else the 401 or 403 to answer."""
    if credentials is None:
        if is_loopback(scope) and names_this_machine(scope):
            return None
        return PlainTextResponse(
            "Forbidden: the console answers only this machine, at 127.0.0.1, [::1] or localhost; set console "
            "credentials "
            "(console_auth=, TWILIO_EVENTS_CONSOLE_AUTH) to open it to others",
            status_code=403,
        )
    if _has_credentials(header(scope, b"authorization") or "", credentials):
        return None
    return PlainTextResponse(
        "Unauthorized: the console asks for its user name and password",
        status_code=401,
        headers={"WWW-Authenticate": 'Basic realm="twilio-events console", charset="UTF-8"'},
    )


def _has_credentials(authorization: str, credentials: tuple[str, str]) -> bool:
    """True when an HTTP Basic Authorization header carries exactly `credentials`."""
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = f"{credentials[0]}:{credentials[1]}".encode()
    return secrets.compare_digest(given, expected)

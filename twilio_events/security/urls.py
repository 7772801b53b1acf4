"""The URL Twilio signed, rebuilt from the request."""

from __future__ import annotations

from urllib.parse import quote

from starlette.types import Scope

from ..http.request import header

_PATH_SAFE = "/:@!$&'()*+,;="
"""Characters a URL path may carry unencoded (RFC 3986 pchar, besides letters, digits and -._~)."""


def callback_url(scope: Scope, public_url: str | None = None, trust_forwarded_headers: bool = False) -> str:
    """The full URL Twilio requested: base URL, the path exactly as sent, and the query string."""
    target = request_path(scope)
    query: bytes = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    if public_url:
        return public_url.rstrip("/") + target
    scheme, host = scheme_and_host(scope, trust_forwarded_headers)
    return f"{scheme}://{host}{target}"


def request_path(scope: Scope) -> str:
    """The path exactly as the client sent it, percent-encoded."""
    # raw_path is optional in ASGI: without it, percent-encode the decoded path as a client would send it.
    path: bytes = scope.get("raw_path") or quote(scope["path"], safe=_PATH_SAFE).encode("ascii")
    return path.decode("latin-1")


def scheme_and_host(scope: Scope, trust_forwarded_headers: bool) -> tuple[str, str]:
    """The scheme and host of the request: its own, or those a trusted proxy forwarded."""
    scheme = str(scope.get("scheme", "http"))
    host = header(scope, b"host") or _server_host(scope)
    if not trust_forwarded_headers:
        return scheme, host
    forwarded = header(scope, b"forwarded")
    if forwarded:
        fields = _first_forwarded_element(forwarded)
        return fields.get("proto", scheme), fields.get("host", host)
    proto = header(scope, b"x-forwarded-proto")
    forwarded_host = header(scope, b"x-forwarded-host")
    scheme = _first(proto) if proto else scheme
    host = _first(forwarded_host) if forwarded_host else host
    port = header(scope, b"x-forwarded-port")
    if port and forwarded_host and ":" not in host and _first(port) not in _DEFAULT_PORTS.get(scheme, ()):
        host = f"{host}:{_first(port)}"
    return scheme, host


_DEFAULT_PORTS = {"https": ("443",), "http": ("80",)}


def _first(value: str) -> str:
    return value.split(",", 1)[0].strip()


def _first_forwarded_element(value: str) -> dict[str, str]:
    """The fields of the first element of an RFC 7239 `Forwarded` header (the one nearest the client)."""
    fields: dict[str, str] = {}
    for pair in _first(value).split(";"):
        name, sep, val = pair.partition("=")
        if sep:
            fields[name.strip().lower()] = val.strip().strip('"')
    return fields


def _server_host(scope: Scope) -> str:
    server = scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    return f"{host}:{port}" if port else str(host)

"""X-Twilio-Signature validation (RequestValidator's rules, computed faster) and the URL Twilio signed."""

from __future__ import annotations

import base64
import hmac
from urllib.parse import quote, urlparse

from starlette.types import Scope
from twilio.request_validator import add_port, remove_port

from .events import Params
from .http.request import header

SIGNATURE_HEADER = b"x-twilio-signature"
_PATH_SAFE = "/:@!$&'()*+,;="
"""Characters a URL path may carry unencoded (RFC 3986 pchar, besides letters, digits and -._~)."""


class SignatureValidator:
    """Checks `X-Twilio-Signature` for the URL Twilio called and the form it posted.

    It accepts and refuses exactly what twilio's `RequestValidator.validate` does for a form POST (the
    URL with and without its default port; names sorted, each name's distinct values sorted; HMAC-SHA1;
    base64), but builds the signed string once, hashes with `hmac.digest` and compares with
    `hmac.compare_digest`. tests/test_signature_equivalence.py proves the two agree.
    """

    _MAX_CACHED_URLS = 1024

    def __init__(self, auth_token: str) -> None:
        self._key = auth_token.encode("utf-8")
        self._url_variants: dict[str, tuple[bytes, ...]] = {}

    def is_valid(self, url: str, params: Params, signature: str) -> bool:
        """True when `signature` is what Twilio computes for `url` and `params`."""
        variants = self._url_variants.get(url)
        if variants is None:
            variants = self._variants(url)
        if not variants:
            return False
        signed = _signed_params(params).encode("utf-8")
        expected = signature.encode("utf-8")
        valid = False
        for variant in variants:  # every variant is checked: no early exit that timing could reveal
            digest = base64.b64encode(hmac.digest(self._key, variant + signed, "sha1"))
            valid |= hmac.compare_digest(digest, expected)
        return valid

    def _variants(self, url: str) -> tuple[bytes, ...]:
        """The URL without and with its port, as RequestValidator tries them (none if it cannot parse)."""
        try:
            parsed = urlparse(url)
            variants: tuple[bytes, ...] = (
                remove_port(parsed).encode("utf-8"),
                add_port(parsed).encode("utf-8"),
            )
        except ValueError:  # e.g. a non-numeric port in the Host header: RequestValidator would raise
            variants = ()
        if len(self._url_variants) < self._MAX_CACHED_URLS:
            self._url_variants[url] = variants
        return variants


def _signed_params(params: Params) -> str:
    """Names in order, each followed by its distinct values in order, as Twilio signs a form."""
    if not params.has_repeated_names:
        return "".join([name + params[name] for name in sorted(params)])
    values: dict[str, set[str]] = {}
    for name, value in params.multi_items():
        values.setdefault(name, set()).add(value)
    return "".join([name + value for name in sorted(values) for value in sorted(values[name])])


def callback_url(scope: Scope, public_url: str | None = None, trust_forwarded_headers: bool = False) -> str:
    """The full URL Twilio requested: base URL, the path exactly as sent, and the query string."""
    # raw_path is optional in ASGI: without it, percent-encode the decoded path as a client would send it.
    path: bytes = scope.get("raw_path") or quote(scope["path"], safe=_PATH_SAFE).encode("ascii")
    target = path.decode("latin-1")
    query: bytes = scope.get("query_string", b"")
    if query:
        target += "?" + query.decode("latin-1")
    if public_url:
        return public_url.rstrip("/") + target
    scheme, host = _scheme_and_host(scope, trust_forwarded_headers)
    return f"{scheme}://{host}{target}"


def _scheme_and_host(scope: Scope, trust_forwarded_headers: bool) -> tuple[str, str]:
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

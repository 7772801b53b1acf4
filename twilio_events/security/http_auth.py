"""HTTP authentication of Twilio itself: Basic (RFC 7617) or Digest (RFC 7616, MD5 with qop=auth).

Twilio sends its first request without credentials and repeats it with them after a 401 that carries a
challenge. Wrong credentials are refused with 403, so that Twilio does not go on guessing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable

from starlette.types import Scope

from ..http.request import header
from .refusal import Refusal
from .urls import request_path

REALM = "twilio_events"
NONCE_LIFETIME = 300.0
"""Seconds a Digest nonce stays valid; an older one gets a fresh challenge marked stale."""

_DIGEST_PARAM = re.compile(r'([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


def _authorization(scope: Scope, scheme: str, challenge: Callable[[], dict[str, str]]) -> str:
    """The credentials of the Authorization header for `scheme`, or Refusal 401 with the challenge."""
    value = header(scope, b"authorization")
    if not value:
        raise Refusal("auth-missing", 401, headers=challenge())
    given, _, credentials = value.strip().partition(" ")
    if given.lower() != scheme.lower():
        raise Refusal("auth-scheme", 401, headers=challenge(), detail=given)
    return credentials.strip()


class BasicAuth:
    """HTTP Basic: the user name and password from the URL's user info, compared in constant time."""

    scheme = "Basic"

    def __init__(self, user: str, password: str, realm: str = REALM) -> None:
        self._user = user.encode("utf-8")
        self._password = password.encode("utf-8")
        self.challenge = {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}

    def check(self, scope: Scope) -> None:
        encoded = _authorization(scope, self.scheme, lambda: self.challenge)
        try:
            user, sep, password = base64.b64decode(encoded, validate=True).partition(b":")
        except (binascii.Error, ValueError):
            sep = b""
        if not sep:
            raise Refusal("auth-malformed", 403, detail=f"HTTP {self.scheme}")
        user_ok = hmac.compare_digest(user, self._user)  # both compared, each in constant time
        password_ok = hmac.compare_digest(password, self._password)
        if not (user_ok and password_ok):
            which = "password" if user_ok else "user name"
            raise Refusal("auth-wrong", 403, detail=f"HTTP Basic credentials (the {which} differs)")


class DigestAuth:
    """HTTP Digest with MD5 and qop=auth: the password never travels, only a hash bound to a nonce.

    Nonces carry their time and an HMAC keyed by the credentials, so every process of a service (and a
    restarted one) accepts the nonces of the others without sharing state. Within its lifetime a nonce
    may be used again (Twilio stays logged in for a call); the signature check is what binds a request.
    """

    scheme = "Digest"

    def __init__(
        self,
        user: str,
        password: str,
        realm: str = REALM,
        lifetime: float = NONCE_LIFETIME,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._user = user.encode("utf-8")
        self._realm = realm
        self._ha1 = _md5(f"{user}:{realm}:{password}")
        self._nonce_key = hashlib.sha256(b"twilio_events digest nonce\0" + self._ha1.encode()).digest()
        self._lifetime = lifetime
        self._clock = clock

    @property
    def challenge(self) -> dict[str, str]:
        return self._challenge(stale=False)

    def _challenge(self, *, stale: bool) -> dict[str, str]:
        value = f'Digest realm="{self._realm}", qop="auth", algorithm=MD5, nonce="{self._new_nonce()}"'
        return {"WWW-Authenticate": value + (", stale=true" if stale else "")}

    def _new_nonce(self) -> str:
        issued = f"{int(self._clock()):x}"
        return f"{issued}.{self._mac(issued)}"

    def _mac(self, issued: str) -> str:
        return hmac.new(self._nonce_key, issued.encode("ascii"), hashlib.sha256).hexdigest()[:32]

    def check(self, scope: Scope) -> None:
        fields = {
            match[1].lower(): match[2] if match[2] else match[3]
            for match in _DIGEST_PARAM.finditer(_authorization(scope, self.scheme, lambda: self.challenge))
        }
        required = ("username", "realm", "nonce", "uri", "response", "qop", "nc", "cnonce")
        if any(not fields.get(name) for name in required) or fields["qop"] != "auth":
            raise Refusal("auth-malformed", 403, detail=f"HTTP {self.scheme}")
        if fields.get("algorithm", "MD5").upper() != "MD5":
            raise Refusal("auth-scheme", 401, headers=self.challenge, detail=f"Digest {fields['algorithm']}")
        issued, _, mac = fields["nonce"].partition(".")
        if not (issued.isascii() and hmac.compare_digest(mac.encode(), self._mac(issued).encode())):
            raise Refusal(
                "auth-wrong", 403, detail="HTTP Digest credentials (a nonce this service never issued)"
            )
        if self._clock() - int(issued, 16) > self._lifetime:
            raise Refusal("auth-stale", 401, headers=self._challenge(stale=True))
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        target = request_path(scope) + (f"?{query}" if query else "")
        if fields["uri"] != target:
            detail = f"HTTP Digest credentials (for uri {fields['uri']!r}, not this request's)"
            raise Refusal("auth-wrong", 403, detail=detail)
        user_ok = hmac.compare_digest(fields["username"].encode("utf-8"), self._user)
        ha2 = _md5(f"{scope['method']}:{fields['uri']}")
        expected = _md5(f"{self._ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:auth:{ha2}")
        response_ok = hmac.compare_digest(fields["response"].lower().encode(), expected.encode())
        realm_ok = fields["realm"] == self._realm
        if not (user_ok and response_ok and realm_ok):
            which = "user name" if not user_ok else "realm" if not realm_ok else "password"
            raise Refusal("auth-wrong", 403, detail=f"HTTP Digest credentials (the {which} differs)")


def _md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()

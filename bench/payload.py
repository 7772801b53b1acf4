"""One realistic, correctly signed voice status callback, identical for every server.

Twilio signs the full URL it calls plus the sorted form parameters with the account's auth token;
each server validates with `AUTH_TOKEN`, so the signature is computed for the exact URL the server
sees: `http://127.0.0.1:PORT/`.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

AUTH_TOKEN = "bench0auth0token0not0a0real0secret"
"""The auth token every server validates with (a fixed test value, not a real credential)."""

HOST = "127.0.0.1"
PATH = "/"
CONTENT_TYPE = "application/x-www-form-urlencoded"
SIGNATURE_HEADER = "X-Twilio-Signature"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
"""Twilio sends a new one with each webhook; the load sends a new one per request (it is not signed),
so servers that de-duplicate (twilio_events) see distinct callbacks, not one callback repeated."""
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
"""What every server answers: the empty TwiML document twilio_events acknowledges with."""

STATUS = "completed"
"""The CallStatus of the benchmark callback; every server has a no-op handler for it."""

PARAMS: tuple[tuple[str, str], ...] = (
    ("AccountSid", "AC3f2a8c1d9e7b4a6f0c5d8e2b1a9f7c3e"),
    ("ApiVersion", "2010-04-01"),
    ("CallSid", "CA9d41e6b07c2f58a3d1e9b4c6a0f2d873"),
    ("CallStatus", STATUS),
    ("CallDuration", "42"),
    ("Duration", "1"),
    ("Direction", "outbound-dial"),
    ("ParentCallSid", "CA5e0b7d2c9a4f16e8b3c0d7a2f5e9b146"),
    ("From", "+14155550100"),
    ("To", "+14155550199"),
    ("Caller", "+14155550100"),
    ("Called", "+14155550199"),
    ("CallbackSource", "call-progress-events"),
    ("SequenceNumber", "3"),
    ("Timestamp", "Wed, 26 Nov 2025 23:30:00 +0000"),
    ("SipResponseCode", "200"),
    ("FromCity", "SAN FRANCISCO"),
    ("FromState", "CA"),
    ("ToCity", "OAKLAND"),
    ("ToState", "CA"),
    ("StirVerstat", "TN-Validation-Passed-A"),
)

BODY: bytes = urlencode(PARAMS).encode("ascii")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The body and the X-Twilio-Signature header of the callback, for one server's URL."""

    url: str
    body: bytes
    signature: str

    @property
    def headers(self) -> dict[str, str]:
        """Content-Type and X-Twilio-Signature (the client adds Host and Content-Length)."""
        return {"Content-Type": CONTENT_TYPE, SIGNATURE_HEADER: self.signature}


def url_for(port: int) -> str:
    """The URL a server on `port` sees, which is the URL Twilio would have signed."""
    return f"http://{HOST}:{port}{PATH}"


def sign(url: str, params: tuple[tuple[str, str], ...] = PARAMS, auth_token: str = AUTH_TOKEN) -> str:
    """The X-Twilio-Signature Twilio sends for a POST of `params` (no repeated names) to `url`."""
    from twilio.request_validator import RequestValidator  # here: the raw ASGI row imports this module

    return str(RequestValidator(auth_token).compute_signature(url, dict(params)))


def signed_request(port: int) -> SignedRequest:
    """The benchmark callback, signed for the server listening on `port`."""
    url = url_for(port)
    return SignedRequest(url=url, body=BODY, signature=sign(url))

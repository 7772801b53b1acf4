"""Test your handlers without Twilio: a client that signs like Twilio, and realistic payloads.

Needs `httpx2` for the client: install `twilio-events[testing]`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from .payloads import (
    API_VERSION,
    CALLEE,
    CALLER,
    TEST_ACCOUNT_SID,
    Payload,
    call_payload,
    inbound_sms_payload,
    new_sid,
    sign,
    sms_payload,
)

__all__ = [
    "API_VERSION",
    "CALLEE",
    "CALLER",
    "TEST_ACCOUNT_SID",
    "Payload",
    "TwilioTestClient",
    "call_payload",
    "inbound_sms_payload",
    "new_sid",
    "sign",
    "sms_payload",
]


class TwilioTestClient(TestClient):
    """A Starlette TestClient for a `TwilioEvents` app whose `callback()` signs like Twilio."""

    def __init__(
        self, app: Any, *, auth_token: str | None = None, base_url: str = "http://testserver", **kwargs: Any
    ) -> None:
        super().__init__(app, base_url=base_url, **kwargs)
        self.auth_token: str = (
            auth_token
            or getattr(app, "auth_token", None)
            or os.environ.get("TWILIO_AUTH_TOKEN")
            or "test-auth-token"  # any token will do for an app that does not validate signatures
        )

    def callback(
        self,
        payload: Mapping[str, str],
        path: str = "/",
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST `payload` to `path` form-encoded with the signature Twilio would send (or `signature`)."""
        # Signed as it goes on the wire: httpx percent-encodes what a URL cannot carry as typed.
        url = str(httpx.URL(str(self.base_url).rstrip("/") + path))
        all_headers = {"X-Twilio-Signature": signature or sign(url, payload, self.auth_token)}
        all_headers.update(headers or {})
        response: httpx.Response = self.post(url, data=dict(payload), headers=all_headers)
        return response

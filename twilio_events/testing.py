"""Test your handlers without Twilio: a client that signs like Twilio, and realistic payloads.

Needs `httpx2` for the client: install `twilio-events[testing]`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import httpx2 as httpx
from starlette.testclient import TestClient

from .app import TwilioEvents
from .kinds import IDEMPOTENCY_HEADER
from .payloads import (
    API_VERSION,
    CALLEE,
    CALLER,
    TEST_ACCOUNT_SID,
    Payload,
    call_payload,
    dial_action_payload,
    gather_payload,
    inbound_sms_payload,
    incoming_call_payload,
    new_idempotency_token,
    new_sid,
    pay_action_payload,
    record_action_payload,
    sign,
    sms_payload,
    whatsapp_payload,
)
from .payloads_streams import (
    CloudEventDict,
    call_status_cloudevent,
    cloudevent,
    event_streams_body,
    inbound_message_cloudevent,
    message_status_cloudevent,
    sign_event_streams,
)
from .payloads_voice import amd_payload, conference_payload, recording_status_payload, transcription_payload
from .scenarios import conference_with_two_participants, recorded_call

__all__ = [
    "API_VERSION",
    "CALLEE",
    "CALLER",
    "TEST_ACCOUNT_SID",
    "Payload",
    "TwilioTestClient",
    "amd_payload",
    "call_payload",
    "call_status_cloudevent",
    "cloudevent",
    "conference_payload",
    "conference_with_two_participants",
    "dial_action_payload",
    "event_streams_body",
    "gather_payload",
    "inbound_message_cloudevent",
    "inbound_sms_payload",
    "incoming_call_payload",
    "message_status_cloudevent",
    "new_idempotency_token",
    "new_sid",
    "pay_action_payload",
    "record_action_payload",
    "recorded_call",
    "recording_status_payload",
    "sign",
    "sign_event_streams",
    "sms_payload",
    "transcription_payload",
    "whatsapp_payload",
]

_TOKEN_HEADER = IDEMPOTENCY_HEADER.decode()


class TwilioTestClient(TestClient):
    """A Starlette TestClient for a `TwilioEvents` app whose `callback()` sends what Twilio sends.

    Each callback carries a signature and a fresh `I-Twilio-Idempotency-Token`; `redeliver()` sends one
    again exactly as Twilio retries it. `idempotency_tokens=False` leaves the header out.

    `app` may be a TwilioEvents app or a Starlette/FastAPI app that mounts one. Requests are signed with
    that app's auth token. With `auth_token=...` they are signed with it, and an app whose token came
    from TWILIO_AUTH_TOKEN (or is missing) validates with it too, so a test passes whatever the
    environment holds; an app given `auth_token=` in code keeps its own.
    """

    def __init__(
        self,
        app: Any,
        *,
        auth_token: str | None = None,
        base_url: str = "http://testserver",
        idempotency_tokens: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, base_url=base_url, **kwargs)
        self.idempotency_tokens = idempotency_tokens
        served = self._served = _twilio_events_apps(app)
        if auth_token:
            for events_app in served:
                if not events_app.auth_token_given:  # a token in the code wins; the environment's does not
                    events_app.use_auth_token(auth_token)
        own = next((events_app.auth_token for events_app in served if events_app.auth_token), None)
        self.auth_token: str = auth_token or own or os.environ.get("TWILIO_AUTH_TOKEN") or "test-auth-token"
        for events_app in served:
            if events_app.validate_signature and not events_app.auth_token and not auth_token:
                events_app.use_auth_token(self.auth_token)  # an app with no token at all: the client's

    def callback(
        self,
        payload: Mapping[str, str],
        path: str = "/",
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
        idempotency_token: str | None = None,
    ) -> httpx.Response:
        """POST `payload` to `path` form-encoded with the signature Twilio would send (or `signature`),
        and a fresh idempotency token (or `idempotency_token`)."""
        # Signed as it goes on the wire: httpx percent-encodes what a URL cannot carry as typed.
        url = str(httpx.URL(str(self.base_url).rstrip("/") + path))
        all_headers = {"X-Twilio-Signature": signature or sign(url, payload, self.auth_token)}
        if idempotency_token is not None or self.idempotency_tokens:
            all_headers[_TOKEN_HEADER] = idempotency_token or new_idempotency_token()
        all_headers.update(headers or {})
        response: httpx.Response = self.post(url, data=dict(payload), headers=all_headers)
        return response

    def event_streams(
        self,
        events: Sequence[CloudEventDict],
        path: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST `events` to an Event Streams sink at `path` (default: the app's sink) as one JSON batch,
        signed as Twilio signs it (`bodySHA256` in the URL, the URL signed) or with `signature`."""
        if path is None:
            path = next((a.event_streams_path for a in self._served if a.event_streams_path), "/events")
        body = event_streams_body(events)
        url = str(httpx.URL(str(self.base_url).rstrip("/") + path))
        signed_url, expected = sign_event_streams(url, body, self.auth_token)
        all_headers = {"X-Twilio-Signature": signature or expected, "Content-Type": "application/json"}
        all_headers.update(headers or {})
        response: httpx.Response = self.post(signed_url, content=body, headers=all_headers)
        return response

    def redeliver(self, response: httpx.Response) -> httpx.Response:
        """Send the request behind `response` again, body and headers unchanged, as Twilio's retry does."""
        request = response.request
        headers = {name: value for name, value in request.headers.items() if name.lower() != "content-length"}
        again: httpx.Response = self.post(str(request.url), content=request.content, headers=headers)
        return again


def _twilio_events_apps(app: Any) -> list[TwilioEvents]:
    """`app` itself when it is a TwilioEvents app, else the TwilioEvents apps mounted in it (at any depth)."""
    if isinstance(app, TwilioEvents):
        return [app]
    found: list[TwilioEvents] = []
    for route in getattr(app, "routes", ()):
        inner = getattr(route, "app", None)
        if inner is not None and inner is not app:
            found.extend(_twilio_events_apps(inner))
    return found

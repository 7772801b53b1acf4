"""Twilio's REST client as the app and the `configure` command build it: checked credentials, a timeout,
an optional base URL (a proxy, or a fake of the API in tests), and one-line errors."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from twilio.base.exceptions import TwilioException
    from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"
REQUEST_TIMEOUT = 30.0
"""Seconds a REST call may take before it fails (the SDK's own default is no limit)."""
API_BASE_URL_ENV = "TWILIO_EVENTS_API_BASE_URL"

_ACCOUNT_SID = re.compile(r"^AC[0-9a-f]{32}$")


class CredentialsError(ValueError):
    """The account SID or auth token is missing or malformed; the message says what to set."""


def check_account_sid(account_sid: str) -> str:
    """The SID unchanged when it is "AC" and 32 hex digits, as Twilio issues them; else CredentialsError."""
    if not _ACCOUNT_SID.match(account_sid):
        shown = account_sid if len(account_sid) <= 40 else account_sid[:37] + "..."
        raise CredentialsError(
            f"{shown!r} is not a Twilio account SID: it is AC followed by 32 hex digits "
            "(Twilio Console > Account > API keys & tokens)"
        )
    return account_sid


def rest_client(
    account_sid: str | None,
    auth_token: str | None,
    *,
    api_base_url: str | None = None,
    timeout: float = REQUEST_TIMEOUT,
) -> Client:
    """A REST client with these credentials, `timeout` seconds per call, talking to `api_base_url` (or
    TWILIO_EVENTS_API_BASE_URL) when given."""
    if not account_sid or not auth_token:
        raise CredentialsError(
            "the REST API needs the account's credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(Twilio Console > Account > API keys & tokens)"
        )
    check_account_sid(account_sid)
    # imported here: heavy (requests), and most webhooks never need them
    from twilio.http.http_client import TwilioHttpClient
    from twilio.rest import Client

    from .rest_http import RebasedHttpClient

    base_url = api_base_url or os.environ.get(API_BASE_URL_ENV) or None
    http_client = RebasedHttpClient(base_url, timeout) if base_url else TwilioHttpClient(timeout=timeout)
    return Client(account_sid, auth_token, http_client=http_client)


def explain(exc: TwilioException, hints: Mapping[int, str] | None = None) -> str:
    """One line that says what the Twilio API refused and why, with the error's documentation link;
    `hints` adds what to check for an HTTP status (401 names the credentials already)."""
    from twilio.base.exceptions import TwilioRestException, TwilioServiceException

    if isinstance(exc, TwilioRestException):
        message = str(exc.msg)
        if message.startswith("Unable to") and ": " in message:  # the SDK's prefix: "Unable to fetch record"
            message = message.split(": ", 1)[1]
        status, code = exc.status, exc.code
    elif isinstance(exc, TwilioServiceException):
        status, code, message = exc.status, exc.code, exc.detail or exc.title
    elif len(exc.args) == 2 and hasattr(exc.args[1], "status_code"):  # a list page: (message, response)
        status, code, message = _error_body(exc.args[1].status_code, str(exc.args[1].text))
    else:
        return f"the Twilio API call failed: {_one_line(str(exc))}"
    text = f"Twilio refused the request (HTTP {status}, error {code}): {_one_line(str(message))}"
    hint = {401: "check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN", **(hints or {})}.get(int(status or 0))
    if hint:
        text += f"; {hint}"
    if code and code != status:
        text += f" (https://www.twilio.com/docs/errors/{code})"
    return text


def _error_body(status: int, text: str) -> tuple[int, object, str]:
    """Twilio's JSON error document: (status, code, message)."""
    try:
        body = json.loads(text)
        return status, body.get("code", status), str(body.get("message") or body.get("detail") or text)
    except (ValueError, AttributeError):
        return status, status, text


def _one_line(text: str) -> str:
    return " ".join(text.split())

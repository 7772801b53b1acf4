"""Asking Twilio's REST API where a call or message stands, with back-off, and the callback it implies."""

from __future__ import annotations

import asyncio
import logging
import random
from typing import TYPE_CHECKING, Any

from twilio.base.exceptions import TwilioException, TwilioRestException

from ..rest import explain

if TYPE_CHECKING:
    from twilio.rest import Client

logger = logging.getLogger("twilio_events")

RECOVERED_PARAM = "RecoveredFrom"
"""The parameter that marks a status delivered from the REST API rather than by Twilio's callback."""

CALL_DONE = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
MESSAGE_DONE = frozenset({"delivered", "undelivered", "failed", "canceled", "read", "received"})
"""The statuses after which a call or message needs no more watching (Twilio reports nothing later that
reconciliation would deliver)."""

_RETRIED = frozenset({429, 500, 502, 503, 504})


class FetchFailed(Exception):
    """Twilio did not say where the resource stands (after retries); nothing is made up for it."""


async def fetch_params(
    client: Client, channel: str, sid: str, account: str, *, attempts: int = 4, base_delay: float = 0.5
) -> list[tuple[str, str]]:
    """The parameters of the status callback the resource's current state implies, fetched with back-off
    on 429 and 5xx (full jitter); FetchFailed when Twilio does not answer."""
    for attempt in range(1, attempts + 1):
        try:
            resource = await asyncio.to_thread(_fetch, client, channel, sid, account)
        except TwilioRestException as exc:
            if exc.status not in _RETRIED or attempt == attempts:
                raise FetchFailed(explain(exc)) from None
            delay = random.uniform(0, base_delay * 2 ** (attempt - 1))
            logger.info(
                "reconcile: %s for %s (attempt %d): retrying in %.1f s", exc.status, sid, attempt, delay
            )
            await asyncio.sleep(delay)
        except TwilioException as exc:
            raise FetchFailed(explain(exc)) from None
        except OSError as exc:  # connection refused, reset, timed out
            if attempt == attempts:
                raise FetchFailed(f"the Twilio API could not be reached: {exc}") from None
            await asyncio.sleep(random.uniform(0, base_delay * 2 ** (attempt - 1)))
        else:
            return _call_params(resource) if channel == "call" else _message_params(resource)
    raise AssertionError("unreachable")


def _fetch(client: Client, channel: str, sid: str, account: str) -> Any:
    api = client.api.v2010.accounts(account) if account else client.api.v2010.account
    return (api.calls(sid) if channel == "call" else api.messages(sid)).fetch()


def _call_params(call: Any) -> list[tuple[str, str]]:
    params = [
        ("CallSid", call.sid),
        ("CallStatus", str(call.status)),
        ("AccountSid", call.account_sid),
        ("From", _sender(call)),
        ("To", call.to or ""),
        ("Direction", str(call.direction or "")),
        ("ApiVersion", call.api_version or ""),
    ]
    optional = {
        "CallDuration": call.duration,
        "AnsweredBy": call.answered_by,
        "ParentCallSid": call.parent_call_sid,
        "CallerName": call.caller_name,
        "ForwardedFrom": call.forwarded_from,
    }
    params += [(name, str(value)) for name, value in optional.items() if value not in (None, "")]
    return [*params, (RECOVERED_PARAM, "rest-api")]


def _message_params(message: Any) -> list[tuple[str, str]]:
    status = str(message.status)
    params = [
        ("MessageSid", message.sid),
        ("SmsSid", message.sid),
        ("MessageStatus", status),
        ("SmsStatus", status),
        ("AccountSid", message.account_sid),
        ("From", _sender(message)),
        ("To", message.to or ""),
        ("ApiVersion", message.api_version or ""),
    ]
    optional = {
        "ErrorCode": message.error_code,
        "MessagingServiceSid": message.messaging_service_sid,
        "NumSegments": message.num_segments,
    }
    params += [(name, str(value)) for name, value in optional.items() if value not in (None, "")]
    return [*params, (RECOVERED_PARAM, "rest-api")]


def _sender(resource: Any) -> str:
    """The resource's `from` (the SDK names it `from_` on a Message and `_from` on a Call)."""
    return str(getattr(resource, "from_", None) or getattr(resource, "_from", None) or "")

"""Twilio's REST API as `configure` uses it: a client (optionally sent to another base URL), finding and
updating a phone number, and Twilio's errors as one line."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from twilio.base.exceptions import TwilioException

from ..rest import CredentialsError, explain, rest_client
from .output import CommandError, one_line

if TYPE_CHECKING:
    from twilio.rest import Client

_E164 = re.compile(r"^\+[1-9]\d{5,14}$")


def client(account_sid: str | None, auth_token: str | None, api_base_url: str | None = None) -> Client:
    """A REST client with these credentials, talking to `api_base_url` when given (the app's
    `app.client` is built the same way: same timeout, same check of the account SID)."""
    if not account_sid or not auth_token:
        raise CommandError(
            "configure needs the account's credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(Twilio Console > Account > API keys & tokens) or pass --account-sid and --auth-token"
        )
    try:
        return rest_client(account_sid, auth_token, api_base_url=api_base_url)
    except CredentialsError as exc:
        raise CommandError(f"--account-sid: {exc}") from None


@contextlib.contextmanager
def twilio_errors() -> Iterator[None]:
    """Turn Twilio's refusals, and an API that cannot be reached, into a one-line CommandError."""
    try:
        yield
    except TwilioException as exc:
        raise CommandError(_twilio_error(exc)) from None
    except OSError as exc:  # requests' connection errors are OSErrors
        raise CommandError(f"cannot reach the Twilio API: {one_line(str(exc))}") from None


def update_number(
    rest: Client, number: str, wanted: dict[str, str], *, dry_run: bool
) -> tuple[Any, Any, dict[str, str]]:
    """The number before, after, and the fields that change (none are changed with `dry_run`)."""
    with twilio_errors():
        before = _find_number(rest, number)
        changing = {name: value for name, value in wanted.items() if getattr(before, name) != value}
        after = before if dry_run or not changing else before.update(**changing)
    return before, after, changing


def _find_number(rest: Client, number: str) -> Any:
    """The IncomingPhoneNumber with this PN... SID or E.164 number in the client's account."""
    if number.startswith("PN"):
        return rest.incoming_phone_numbers(number).fetch()
    if not _E164.match(number):
        raise CommandError(
            f"--number must be in E.164 form such as +15551234567 (or a PN... SID), got {number!r}"
        )
    matches = [
        n for n in rest.incoming_phone_numbers.list(phone_number=number, limit=20) if n.phone_number == number
    ]
    if not matches:
        raise CommandError(
            f"{number} is not a phone number of account {rest.account_sid}: check --number and the account "
            "(Console > Phone Numbers > Active numbers)"
        )
    return matches[0]


def _twilio_error(exc: TwilioException) -> str:
    """Twilio's refusal in one line: HTTP status, error code and message, and what to check."""
    return explain(exc, {404: "check --number and TWILIO_ACCOUNT_SID"})

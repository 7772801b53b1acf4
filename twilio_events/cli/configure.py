"""The `configure` command: point a Twilio phone number's webhooks at the service with the REST API."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient

from .output import CommandError, one_line, table

if TYPE_CHECKING:
    from twilio.rest import Client

TWILIO_API = "https://api.twilio.com"
REQUEST_TIMEOUT = 30.0
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")


@dataclass(frozen=True, slots=True)
class Setting:
    """One field of an IncomingPhoneNumber: its Console label, REST parameter and SDK attribute."""

    label: str
    parameter: str
    attribute: str


SMS_SETTINGS = (
    Setting('Messaging "A MESSAGE COMES IN"', "SmsUrl", "sms_url"),
    Setting("  method", "SmsMethod", "sms_method"),
)
VOICE_SETTINGS = (
    Setting('Voice "CALL STATUS CHANGES"', "StatusCallback", "status_callback"),
    Setting("  method", "StatusCallbackMethod", "status_callback_method"),
)


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """Sends the SDK's requests to another base URL (a Twilio API mock or a proxy) instead of Twilio's."""

    def __init__(self, base_url: str, timeout: float = REQUEST_TIMEOUT) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        rebased = urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))
        return super().request(method, rebased, *args, **kwargs)


def client(account_sid: str | None, auth_token: str | None, api_base_url: str | None = None) -> Client:
    """A REST client with these credentials, talking to `api_base_url` when given."""
    if not account_sid or not auth_token:
        raise CommandError(
            "configure needs the account's credentials: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN "
            "(Twilio Console > Account > API keys & tokens) or pass --account-sid and --auth-token"
        )
    from twilio.rest import Client

    http_client = (
        RebasedHttpClient(api_base_url) if api_base_url else TwilioHttpClient(timeout=REQUEST_TIMEOUT)
    )
    return Client(account_sid, auth_token, http_client=http_client)


def webhook_url(url: str) -> str:
    """`url` with at least "/" as its path (Twilio signs the URL as configured); refuse a URL Twilio could
    never call: not http(s), or on this machine or a private network."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--url must be an http(s) URL such as https://abc.ngrok.app/, got {url!r}")
    host = parts.hostname
    try:
        address = ipaddress.ip_address(host)
        local = address.is_loopback or address.is_private or address.is_unspecified or address.is_link_local
    except ValueError:
        local = host == "localhost" or host.endswith((".localhost", ".local"))
    if local:
        raise CommandError(
            f"Twilio cannot reach {url}: it is on this machine or a private network. Expose the service "
            "(e.g. `ngrok http 8090`) and pass the public https URL"
        )
    return url if parts.path else urlunsplit(parts._replace(path="/"))


def configure(
    rest: Client,
    number: str,
    url: str,
    *,
    sms: bool,
    voice: bool,
    dry_run: bool,
    out: TextIO,
) -> int:
    """Set the number's webhooks to `url` (method POST), printing the values before and after."""
    url = webhook_url(url)
    settings = (SMS_SETTINGS if sms else ()) + (VOICE_SETTINGS if voice else ())
    wanted = {}
    for setting in settings:
        wanted[setting.attribute] = "POST" if setting.parameter.endswith("Method") else url
    try:
        before = _find_number(rest, number)
        changing = {name: value for name, value in wanted.items() if getattr(before, name) != value}
        after = before if dry_run or not changing else before.update(**changing)
    except TwilioException as exc:
        raise CommandError(_twilio_error(exc)) from None
    except OSError as exc:  # requests' connection errors are OSErrors
        raise CommandError(f"cannot reach the Twilio API: {one_line(str(exc))}") from None

    print(
        f"{before.phone_number} ({before.sid}, {before.friendly_name!r}) in account {before.account_sid}",
        file=out,
    )
    rows = [
        [
            setting.label,
            f"({setting.parameter})",
            _shown(getattr(before, setting.attribute)),
            _shown(wanted[setting.attribute] if dry_run else getattr(after, setting.attribute)),
        ]
        for setting in settings
    ]
    print(table(["SETTING", "", "BEFORE", "WOULD BE" if dry_run else "AFTER"], rows), file=out)
    overriding = [("Messaging", "sms_application_sid")] * sms + [("Voice", "voice_application_sid")] * voice
    for kind, attribute in overriding:
        if app_sid := getattr(before, attribute, None):
            print(
                f"note: {kind} on this number is handled by TwiML App {app_sid}; Twilio uses the App's URLs "
                "while it is set",
                file=out,
            )
    if not changing:
        print("nothing to change: the number already points at this URL", file=out)
    elif dry_run:
        print(f"dry run: nothing was changed ({len(changing)} field(s) would be)", file=out)
    else:
        print(f"updated {len(changing)} field(s)", file=out)
    if sms:
        print(
            "Message status callbacks are set per message, not per number: send with "
            f"status_callback={url!r} (or set it on your Messaging Service).",
            file=out,
        )
    return 0


def _find_number(rest: Client, number: str) -> Any:
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


def _shown(value: object) -> str:
    return str(value) if value else "(empty)"


def _twilio_error(exc: TwilioException) -> str:
    if isinstance(exc, TwilioRestException):
        message = str(exc.msg)
        if (
            message.startswith("Unable to") and ": " in message
        ):  # the SDK's prefix, e.g. "Unable to fetch record"
            message = message.split(": ", 1)[1]
        status, code = exc.status, exc.code
    elif isinstance(exc, TwilioServiceException):
        status, code, message = exc.status, exc.code, exc.detail or exc.title
    elif len(exc.args) == 2 and hasattr(exc.args[1], "status_code"):  # a list page: (message, response)
        status, code, message = _error_body(exc.args[1].status_code, str(exc.args[1].text))
    else:
        return f"the Twilio API call failed: {one_line(str(exc))}"
    text = f"Twilio refused the request (HTTP {status}, error {code}): {one_line(str(message))}"
    if status == 401:
        text += "; check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
    elif status == 404:
        text += "; check --number and TWILIO_ACCOUNT_SID"
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

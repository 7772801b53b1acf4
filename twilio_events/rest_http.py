"""The REST client's HTTP layer sent to another base URL: a proxy, or a fake of Twilio's API in tests.

Imported only when a REST client is built: it brings in `requests`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from twilio.http.http_client import TwilioHttpClient


class RebasedHttpClient(TwilioHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """Sends the SDK's requests to another base URL (a Twilio API fake or a proxy) instead of Twilio's."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        base = urlsplit(self.base_url)
        rebased = urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))
        return super().request(method, rebased, *args, **kwargs)

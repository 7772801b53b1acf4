"""A request that is not accepted, and why (the diagnosis turns the cause into words)."""

from __future__ import annotations

from .signature import SignatureSettings


class Refusal(Exception):
    """A request that is not accepted: the cause (a short name) and the answer's status and headers."""

    def __init__(
        self,
        cause: str,
        status_code: int = 403,
        *,
        url: str | None = None,
        settings: SignatureSettings | None = None,
        headers: dict[str, str] | None = None,
        detail: str = "",
    ) -> None:
        super().__init__(cause)
        self.cause = cause
        self.status_code = status_code
        self.url = url
        self.settings = settings
        self.headers = headers
        self.detail = detail

"""Is this request from Twilio? HTTP credentials, then the signature and the account it names."""

from __future__ import annotations

import hashlib
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from starlette.types import Scope
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER

from ..events import Params
from ..http.request import header
from .credentials import Credentials, token_role
from .http_auth import BasicAuth, DigestAuth
from .refusal import Refusal
from .signature import HASHES, SignatureSettings, SignatureValidator

logger = logging.getLogger("twilio_events")

SIGNATURE_HEADER = b"x-twilio-signature"
SETTINGS_HEADER = SIGNATURE_SETTINGS_HEADER.lower().encode("latin-1")
_USERINFO_SAFE = "!$&'()*+,;="


@dataclass(frozen=True)
class Match:
    """The credential a request was signed with, in words for the log ("secondary auth token")."""

    credential: str
    account: str | None = None
    """The AccountSid whose token signed it, when each account has tokens of its own."""


class RequestVerifier:
    """Decides whether a request is Twilio's, and with which credential; the diagnosis explains refusals."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        validate_signature: bool = True,
    ) -> None:
        self.credentials = credentials
        self.validate_signature = validate_signature
        login = credentials.basic_auth or credentials.digest_auth
        self.userinfo = (
            f"{quote(login[0], safe=_USERINFO_SAFE)}:{quote(login[1], safe=_USERINFO_SAFE + ':')}"
            if login
            else None
        )
        self._http_auth: BasicAuth | DigestAuth | None = None
        if credentials.basic_auth:
            self._http_auth = BasicAuth(*credentials.basic_auth)
        elif credentials.digest_auth:
            self._http_auth = DigestAuth(*credentials.digest_auth)
        self._tokens = {
            account: SignatureValidator(*tokens, userinfo=self.userinfo)
            for account, tokens in credentials.tokens.items()
        }
        self._any_account = self._tokens.get(None)
        self._keys = {
            key_id: SignatureValidator(key.secret, algorithm=key.algorithm, userinfo=self.userinfo)
            for key_id, key in credentials.shared_keys.items()
        }
        self._last_credential: dict[str | None, str] = {}

    def authenticate(self, scope: Scope) -> None:
        """Check HTTP credentials when they are configured: 401 asks Twilio for them, 403 refuses."""
        if self._http_auth is not None:
            self._http_auth.check(scope)

    def verify(
        self,
        scope: Scope,
        url: str,
        params: Params,
        signature: str,
        *,
        body: bytes | None = None,
        account: str | None = None,
    ) -> Match | None:
        """The credential that signed `url` and `params` (None when signatures are off), or Refusal.

        For a JSON `body` (Event Streams), `params` is empty and `account` is the events' AccountSid:
        with `bodySHA256` in the URL, the body must hash to it and the URL alone is signed; without it,
        the URL followed by the body is.
        """
        account = account if account is not None else params.get("AccountSid")
        match = None
        if self.validate_signature:
            signed_body = None if body is None else _signed_body(url, body)
            settings = header(scope, SETTINGS_HEADER)
            if settings is not None:
                match = self._shared_key(
                    SignatureSettings.parse(settings), url, params, signature, signed_body
                )
            else:
                match = self._token(url, params, signature, signed_body, account)
        self.check_account(account)
        return match

    def check_account(self, account: str | None) -> None:
        """Refusal when the callbacks of `account` are not accepted here."""
        allowed = self.credentials.allowed_accounts
        if allowed is not None and account not in allowed:
            raise Refusal("other-account")

    def _token(
        self, url: str, params: Params, signature: str, body: bytes | None, account: str | None
    ) -> Match:
        validator = self._any_account
        if validator is None:
            validator = self._tokens.get(account)
            if validator is None:
                raise Refusal("unknown-account" if self._tokens else "no-token", url=url)
        else:
            account = None
        index = validator.match(url, params, signature, body=body)
        if index is None:
            raise Refusal("signature", url=url)
        return Match(f"{token_role(index)} auth token", account)

    def _shared_key(
        self, settings: SignatureSettings, url: str, params: Params, signature: str, body: bytes | None
    ) -> Match:
        if not self._keys:
            raise Refusal("no-shared-keys", url=url, settings=settings)
        if settings.key is None or settings.key not in self._keys:
            raise Refusal("unknown-key", url=url, settings=settings)
        if settings.algorithm.upper() not in HASHES:
            raise Refusal("unsupported-algorithm", url=url, settings=settings)
        if settings.algorithm.upper() != self.credentials.shared_keys[settings.key].algorithm.upper():
            raise Refusal("algorithm-mismatch", url=url, settings=settings)
        if self._keys[settings.key].match(url, params, signature, body=body) is None:
            raise Refusal("signature", url=url, settings=settings)
        return Match(f"shared key {settings.key}")

    def note(self, match: Match, listener: str) -> None:
        """Log (INFO) when an account's callbacks start arriving signed with another credential."""
        last = self._last_credential.get(match.account)
        if last == match.credential:
            return
        self._last_credential[match.account] = match.credential
        whose = f" for {match.account}" if match.account else ""
        if last is None:
            logger.info("[%s] callbacks%s are signed with the %s", listener, whose, match.credential)
            return
        advice = ""
        if match.credential.startswith("secondary auth token"):
            advice = (
                ": Twilio signs with its primary token, so the secondary one was promoted; make it the first "
                "token and remove the old one when no callback uses it"
            )
        logger.info(
            "[%s] callbacks%s are now signed with the %s (until now: the %s)%s",
            listener,
            whose,
            match.credential,
            last,
            advice,
        )


def _signed_body(url: str, body: bytes) -> bytes:
    """What follows the URL in the signed string of a JSON request: nothing when the URL carries the
    body's hash (`bodySHA256`, checked here: Refusal when it differs), else the body itself."""
    declared = parse_qs(urlsplit(url).query).get("bodySHA256")
    if not declared:
        return body
    actual = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(actual.encode(), declared[0].lower().encode()):
        raise Refusal("body-hash", url=url)
    return b""

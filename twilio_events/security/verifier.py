"""Is this request from Twilio? Basic credentials, then the signature and the account it names."""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from dataclasses import dataclass
from urllib.parse import quote

from starlette.types import Scope
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, get_signature_algorithm

from ..events import Params
from ..http.request import header
from .credentials import Credentials, token_role
from .signature import HASHES, SignatureValidator

logger = logging.getLogger("twilio_events")

SIGNATURE_HEADER = b"x-twilio-signature"
SETTINGS_HEADER = SIGNATURE_SETTINGS_HEADER.lower().encode("latin-1")
REALM = "twilio_events"
CHALLENGE = {"WWW-Authenticate": f'Basic realm="{REALM}", charset="UTF-8"'}
_USERINFO_SAFE = "!$&'()*+,;="


@dataclass(frozen=True)
class Match:
    """The credential a request was signed with, in words for the log ("secondary auth token")."""

    credential: str
    account: str | None = None
    """The AccountSid whose token signed it, when each account has tokens of its own."""


@dataclass(frozen=True)
class SignatureSettings:
    """X-Twilio-Webhooks-Signature-Settings: which SharedKey and algorithm signed the request."""

    key: str | None
    algorithm: str

    @classmethod
    def parse(cls, value: str) -> SignatureSettings:
        key = None
        for part in value.split(","):
            name, sep, item = part.partition("=")
            if sep and name.strip().lower() == "key" and item.strip():
                key = item.strip()
        return cls(key, str(get_signature_algorithm(value)))


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
        basic = credentials.basic_auth
        self.userinfo = (
            f"{quote(basic[0], safe=_USERINFO_SAFE)}:{quote(basic[1], safe=_USERINFO_SAFE + ':')}"
            if basic
            else None
        )
        self._basic = (basic[0].encode("utf-8"), basic[1].encode("utf-8")) if basic else None
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
        """Check HTTP Basic credentials when they are configured: 401 asks Twilio for them, 403 refuses."""
        if self._basic is None:
            return
        value = header(scope, b"authorization")
        if not value:
            raise Refusal("basic-auth-missing", 401, headers=CHALLENGE)
        scheme, _, encoded = value.strip().partition(" ")
        if scheme.lower() != "basic":
            raise Refusal("basic-auth-scheme", 401, headers=CHALLENGE, detail=scheme)
        try:
            user, sep, password = base64.b64decode(encoded.strip(), validate=True).partition(b":")
        except (binascii.Error, ValueError):
            sep = b""
        if not sep:
            raise Refusal("basic-auth-malformed", 403)
        user_ok = hmac.compare_digest(user, self._basic[0])  # both compared, each in constant time
        password_ok = hmac.compare_digest(password, self._basic[1])
        if not (user_ok and password_ok):
            raise Refusal("basic-auth-wrong", 403, detail="password" if user_ok else "user name")

    def verify(self, scope: Scope, url: str, params: Params, signature: str) -> Match | None:
        """The credential that signed `url` and `params` (None when signatures are off), or Refusal."""
        match = None
        if self.validate_signature:
            settings = header(scope, SETTINGS_HEADER)
            if settings is not None:
                match = self._shared_key(SignatureSettings.parse(settings), url, params, signature)
            else:
                match = self._token(url, params, signature)
        allowed = self.credentials.allowed_accounts
        if allowed is not None and params.get("AccountSid") not in allowed:
            raise Refusal("other-account")
        return match

    def _token(self, url: str, params: Params, signature: str) -> Match:
        validator = self._any_account
        account = None
        if validator is None:
            account = params.get("AccountSid")
            validator = self._tokens.get(account)
            if validator is None:
                raise Refusal("unknown-account" if self._tokens else "no-token", url=url)
        index = validator.match(url, params, signature)
        if index is None:
            raise Refusal("signature", url=url)
        return Match(f"{token_role(index)} auth token", account)

    def _shared_key(self, settings: SignatureSettings, url: str, params: Params, signature: str) -> Match:
        if not self._keys:
            raise Refusal("no-shared-keys", url=url, settings=settings)
        if settings.key is None or settings.key not in self._keys:
            raise Refusal("unknown-key", url=url, settings=settings)
        if settings.algorithm.upper() not in HASHES:
            raise Refusal("unsupported-algorithm", url=url, settings=settings)
        if settings.algorithm.upper() != self.credentials.shared_keys[settings.key].algorithm.upper():
            raise Refusal("algorithm-mismatch", url=url, settings=settings)
        if self._keys[settings.key].match(url, params, signature) is None:
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

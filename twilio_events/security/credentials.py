"""The secrets a service accepts: auth tokens (rotation, subaccounts), shared keys and Basic credentials."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from twilio.request_validator import HMAC_SHA256

from .signature import hash_name

AUTH_TOKEN_ENV = "TWILIO_AUTH_TOKEN"
SECONDARY_AUTH_TOKEN_ENV = "TWILIO_SECONDARY_AUTH_TOKEN"
SHARED_KEYS_ENV = "TWILIO_EVENTS_SHARED_KEYS"
BASIC_AUTH_ENV = "TWILIO_EVENTS_BASIC_AUTH"
DIGEST_AUTH_ENV = "TWILIO_EVENTS_DIGEST_AUTH"

Tokens = str | Sequence[str]
AuthTokens = str | Sequence[str] | Mapping[str, str | Sequence[str]]
"""One token, tokens in order (primary first), or the tokens of each account by AccountSid."""


@dataclass(frozen=True)
class SharedKey:
    """A SharedKey of Twilio's Webhooks configuration API: its secret and the algorithm it signs with."""

    secret: str = field(repr=False)
    algorithm: str = HMAC_SHA256

    def __post_init__(self) -> None:
        if not self.secret:
            raise ValueError("a SharedKey needs its secret")
        hash_name(self.algorithm)  # refuse an algorithm Twilio does not sign with, when configured


def token_role(index: int) -> str:
    """What the n-th configured token of an account is called in the log."""
    return ("primary", "secondary")[index] if index < 2 else f"token #{index + 1}"


@dataclass(frozen=True)
class Credentials:
    """Every secret a request may be signed or authenticated with; `repr` never shows one."""

    tokens: Mapping[str | None, tuple[str, ...]] = field(repr=False)
    """Each account's tokens, primary first; the key None stands for every account."""
    allowed_accounts: frozenset[str] | None
    """The AccountSids whose callbacks are accepted; None accepts any account."""
    shared_keys: Mapping[str, SharedKey]
    basic_auth: tuple[str, str] | None = field(repr=False)
    digest_auth: tuple[str, str] | None = field(default=None, repr=False)

    @property
    def by_account(self) -> bool:
        """True when each account has tokens of its own (subaccounts)."""
        return None not in self.tokens

    def primary_token(self, account: str | None) -> str | None:
        """The token Twilio signs `account`'s callbacks with now (the primary), if one is configured."""
        found = self.tokens.get(None) or self.tokens.get(account or "") or ()
        return found[0] if found else None

    @property
    def can_verify(self) -> bool:
        return bool(self.tokens) or bool(self.shared_keys)

    def describe(self) -> str:
        """What is configured, in words and without a secret, for start-up and refusal messages."""
        parts = []
        for account, tokens in self.tokens.items():
            roles = " and ".join(token_role(index) for index in range(len(tokens)))
            parts.append(f"the {roles} auth token" + (f" of {account}" if account else ""))
        if self.shared_keys:
            parts.append("shared key " + ", ".join(sorted(self.shared_keys)))
        return "; ".join(parts) or "no signing secret"


def load_credentials(
    auth_token: AuthTokens | None,
    account_sid: str | None,
    shared_keys: Mapping[str, str | SharedKey] | None,
    basic_auth: tuple[str, str] | None,
    environ: Mapping[str, str] = os.environ,
    digest_auth: tuple[str, str] | None = None,
) -> tuple[Credentials, str | None, str | None]:
    """The credentials, the main account's SID and its primary token; ValueError says what is wrong.

    Without `auth_token`, the tokens come from TWILIO_AUTH_TOKEN (comma-separated, primary first) and then
    TWILIO_SECONDARY_AUTH_TOKEN; shared keys from TWILIO_EVENTS_SHARED_KEYS (`id=secret,id=secret`); Basic
    credentials from TWILIO_EVENTS_BASIC_AUTH (`user:password`), Digest ones from TWILIO_EVENTS_DIGEST_AUTH.
    """
    account_sid = account_sid or environ.get("TWILIO_ACCOUNT_SID") or None
    if auth_token is None:
        tokens = _split(environ.get(AUTH_TOKEN_ENV, "")) + _split(environ.get(SECONDARY_AUTH_TOKEN_ENV, ""))
        by_account: dict[str | None, tuple[str, ...]] = {None: tokens} if tokens else {}
        allowed = frozenset({account_sid}) if account_sid else None
    elif isinstance(auth_token, Mapping):
        by_account = {}
        for sid, value in auth_token.items():
            if not sid.startswith("AC"):
                raise ValueError(f"auth_token keys are AccountSids (AC...), not {sid!r}")
            by_account[sid] = _tokens(value, f"auth_token[{sid!r}]")
        if not by_account:
            raise ValueError("auth_token={} names no account")
        if account_sid and account_sid not in by_account:
            raise ValueError(f"account_sid {account_sid} has no token in auth_token={{...}}")
        account_sid = account_sid or next(iter(by_account))
        allowed = frozenset(sid for sid in by_account if sid)
    else:
        tokens = _tokens(auth_token, "auth_token")
        by_account = {None: tokens}
        allowed = frozenset({account_sid}) if account_sid else None
    keys = _shared_keys(shared_keys if shared_keys is not None else environ.get(SHARED_KEYS_ENV, ""))
    basic = _user_password(basic_auth if basic_auth is not None else environ.get(BASIC_AUTH_ENV, ""), "basic")
    digest = _user_password(
        digest_auth if digest_auth is not None else environ.get(DIGEST_AUTH_ENV, ""), "digest"
    )
    if basic and digest:
        raise ValueError("choose HTTP Basic or Digest authentication, not both (basic_auth / digest_auth)")
    credentials = Credentials(by_account, allowed, keys, basic, digest)
    main_tokens = by_account.get(None) or by_account.get(account_sid) or ()
    return credentials, account_sid, (main_tokens[0] if main_tokens else None)


def _split(value: str) -> tuple[str, ...]:
    return tuple(token.strip() for token in value.split(",") if token.strip())


def _tokens(value: Tokens, name: str) -> tuple[str, ...]:
    tokens = _split(value) if isinstance(value, str) else tuple(t.strip() for t in value if t.strip())
    if not tokens:
        raise ValueError(f"{name} holds no token")
    return tokens


def _shared_keys(value: Mapping[str, str | SharedKey] | str) -> dict[str, SharedKey]:
    if isinstance(value, str):
        pairs = [item.partition("=") for item in _split(value)]
        if any(not sep or not key.strip() for key, sep, _ in pairs):
            raise ValueError(f"{SHARED_KEYS_ENV} is `key_id=secret` pairs separated by commas")
        value = {key.strip(): secret.strip() for key, _, secret in pairs}
    return {
        key: secret if isinstance(secret, SharedKey) else SharedKey(secret) for key, secret in value.items()
    }


def _user_password(value: tuple[str, str] | str, scheme: str) -> tuple[str, str] | None:
    if isinstance(value, str):
        if not value:
            return None
        user, sep, password = value.partition(":")
        if not sep:
            raise ValueError(f"TWILIO_EVENTS_{scheme.upper()}_AUTH is `user:password`")
        value = (user, password)
    user, password = value
    if not user or not password or ":" in user:
        raise ValueError(f"{scheme}_auth is (user, password): both set, and no ':' in the user name")
    return user, password

"""Why a request was refused, in words a user can act on; computed only after a refusal.

The diagnosis tries the URLs Twilio may have signed (the scheme and host a proxy forwarded, with and
without the port, with and without the mount prefix, the query string as received and re-encoded) with
every configured secret, and says which one matches and which setting would make the service check it.
It explains and never accepts: the request stays refused until the user changes that setting. Log lines
name credentials by role ("secondary auth token", "shared key webhooks_sharedkey_...") and show URLs with
any password masked; they never hold a secret or an expected signature.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from starlette.types import Scope

from ..events import Params
from ..http.request import header
from .credentials import token_role
from .refusal import Refusal
from .signature import SignatureValidator
from .urls import request_path, scheme_and_host
from .verifier import RequestVerifier

logger = logging.getLogger("twilio_events")

SETTING_FIX = "set trust_forwarded_headers=True (only behind a proxy that sets these headers) or public_url="
STILL_REFUSED = "The request was refused: the service checks only the URL its settings give."


@dataclass(frozen=True)
class Candidate:
    """A URL Twilio may have signed, and how it differs from the one the service checked."""

    url: str
    how: tuple[str, ...]
    prefix: str = ""
    """A path prefix Twilio called that the request no longer carries."""


@dataclass(frozen=True)
class Secret:
    name: str
    key: str
    algorithm: str
    account: str | None = None


def explain(
    refusal: Refusal,
    scope: Scope,
    params: Params,
    signature: str,
    verifier: RequestVerifier,
    public_url: str | None = None,
) -> str:
    """One paragraph: what was checked, the most likely cause, and the setting that fixes it."""
    cause = refusal.cause
    account = params.get("AccountSid")
    credentials = verifier.credentials
    if cause == "no-signature":
        return (
            "no X-Twilio-Signature header: is this request from Twilio? Twilio signs every webhook; a "
            "request without a signature comes from something else (a health check, a scanner, a test)"
        )
    if cause == "auth-wrong":
        return (
            f"wrong {refusal.detail}: the user info in the URL configured in Twilio "
            "(https://user:password@host/...) or its AuthProfile must match basic_auth= / digest_auth= "
            "(TWILIO_EVENTS_BASIC_AUTH / TWILIO_EVENTS_DIGEST_AUTH)"
        )
    if cause == "auth-malformed":
        return (
            f"an Authorization header that is not valid {refusal.detail} credentials: is this request "
            "from Twilio?"
        )
    if cause == "other-account":
        allowed = ", ".join(sorted(credentials.allowed_accounts or ()))
        return (
            f"the callback is for account {account or '(no AccountSid)'}, but this service accepts only "
            f"{allowed}: add that account (auth_token={{AccountSid: token}}) or point its numbers elsewhere"
        )
    if cause == "unknown-account":
        return (
            f"the callback is for account {account or '(no AccountSid)'}, which has no token here; the "
            f"service knows {credentials.describe()}: add auth_token={{{account!r}: '...'}} for a subaccount"
        )
    if cause == "no-token":
        return "no auth token is configured, and the request is not signed with a shared key"
    if cause == "body-hash":
        return (
            "the body's SHA-256 does not match bodySHA256 in the URL: the body was changed on its way "
            "(a proxy that re-encodes JSON?), or the request is not Twilio's"
        )
    settings = refusal.settings
    if settings is not None and cause != "signature":
        key = settings.key or "(none)"
        if cause == "no-shared-keys":
            return (
                f"signed with shared key {key} ({settings.algorithm}, X-Twilio-Webhooks-Signature-Settings), "
                "but no shared key is configured: add shared_keys={key_id: secret} or "
                "TWILIO_EVENTS_SHARED_KEYS"
            )
        if cause == "unknown-key":
            known = ", ".join(sorted(credentials.shared_keys))
            return (
                f"signed with shared key {key}, which is not configured (known: {known}): add it to "
                "shared_keys before the Webhook Setting uses it; the auth token is never tried instead"
            )
        configured = credentials.shared_keys[key].algorithm if key in credentials.shared_keys else "?"
        if cause == "unsupported-algorithm":
            return (
                f"shared key {key} signed with algorithm {settings.algorithm!r}, which this service does not "
                f"support (it knows HMAC_SHA1, HMAC_SHA256); configured for it: {configured}"
            )
        return (
            f"shared key {key} signed with {settings.algorithm}, but it is configured for {configured}: set "
            f"SharedKey(secret, algorithm={settings.algorithm!r}) if the Webhook Setting changed"
        )
    return _explain_signature(refusal, scope, params, signature, verifier, public_url)


def _explain_signature(
    refusal: Refusal,
    scope: Scope,
    params: Params,
    signature: str,
    verifier: RequestVerifier,
    public_url: str | None,
) -> str:
    checked = refusal.url or ""
    secrets = list(_secrets(verifier))
    expected = _expected_secrets(refusal, params, verifier, secrets)
    candidates = _candidates(scope, checked, public_url)
    found: tuple[Candidate, Secret] | None = None
    for candidate in [Candidate(checked, ()), *candidates]:
        for secret in secrets:
            validator = SignatureValidator(secret.key, algorithm=secret.algorithm, userinfo=verifier.userinfo)
            if validator.is_valid(candidate.url, params, signature):
                found = (candidate, secret)
                break
        if found:
            break
    checked_with = " and ".join(secret.name for secret in expected) or "no secret"
    intro = f"X-Twilio-Signature does not match {_mask(checked)} with the {checked_with}."
    if found is None:
        tried = ", ".join(_mask(candidate.url) for candidate in candidates[:12])
        hint = ""
        if refusal.settings is None and len(signature) == 44:
            hint = (
                " The signature is as long as an HMAC-SHA256 one, but no "
                "X-Twilio-Webhooks-Signature-Settings header came with it: does a proxy drop that header?"
            )
        return (
            f"{intro} No configured secret matches it for this URL or the variants tried ({tried}). Most "
            "likely the request was signed with an auth token this service does not have: the account's "
            "new primary token after a rotation (add it: auth_token=[new, old] or "
            "TWILIO_SECONDARY_AUTH_TOKEN), another account's or subaccount's token, or it is not from "
            f"Twilio; or a parameter was changed on the way.{hint}"
        )
    candidate, secret = found
    if not candidate.how:  # the URL was right: another secret signed it
        if secret.account and secret.account != params.get("AccountSid"):
            return (
                f"{intro} It matches the {secret.name}, but the callback says AccountSid "
                f"{params.get('AccountSid')}: a request for one account signed with another account's token "
                f"is refused. {STILL_REFUSED}"
            )
        return f"{intro} It matches the {secret.name} instead. {STILL_REFUSED}"
    fix = _fix(candidate, public_url)
    return (
        f"{intro} It matches {_mask(candidate.url)} ({'; '.join(candidate.how)}) with the {secret.name}: "
        f"{fix}. {STILL_REFUSED}"
    )


def _fix(candidate: Candidate, public_url: str | None) -> str:
    parts = urlsplit(candidate.url)
    base = f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    how = " ".join(candidate.how)
    if "query" in how:
        return (
            "a proxy changed the query string's encoding on the way; make it pass the query unchanged, or "
            "use a callback URL whose query needs no encoding"
        )
    if candidate.prefix:
        return f"a proxy removes a path prefix Twilio called: set public_url={base + candidate.prefix!r}"
    if public_url:
        return f"public_url={public_url!r} is not the URL Twilio calls: set public_url={base!r}"
    if "arrived as http://" in how:
        return (
            f"the signature matches {parts.scheme}://... but the request arrived as http://: TLS ends at a "
            f"proxy or tunnel in front of this service; {SETTING_FIX}{base!r}"
        )
    return f"the service is behind a proxy or tunnel that changes the URL; {SETTING_FIX}{base!r}"


def _secrets(verifier: RequestVerifier) -> Iterator[Secret]:
    for account, tokens in verifier.credentials.tokens.items():
        whose = f" of {account}" if account else ""
        for index, token in enumerate(tokens):
            yield Secret(f"{token_role(index)} auth token{whose}", token, "HMAC_SHA1", account)
    for key_id, key in verifier.credentials.shared_keys.items():
        yield Secret(f"shared key {key_id} ({key.algorithm})", key.secret, key.algorithm)


def _expected_secrets(
    refusal: Refusal, params: Params, verifier: RequestVerifier, secrets: list[Secret]
) -> list[Secret]:
    """The secrets the service checked this request with."""
    if refusal.settings is not None:
        return [s for s in secrets if s.name.startswith(f"shared key {refusal.settings.key} ")]
    tokens = [s for s in secrets if not s.name.startswith("shared key ")]
    if verifier.credentials.by_account:
        return [s for s in tokens if s.account == params.get("AccountSid")]
    return tokens


def _candidates(scope: Scope, checked: str, public_url: str | None) -> list[Candidate]:
    """URLs Twilio may have signed for this request, each with how it differs from the checked one."""
    own_scheme, own_host = scheme_and_host(scope, False)
    bases: list[tuple[str, str, tuple[str, ...]]] = [(own_scheme, own_host, ())]
    fwd_scheme, fwd_host = scheme_and_host(scope, True)
    proto_only = header(scope, b"x-forwarded-proto") or header(scope, b"forwarded")
    if fwd_scheme != own_scheme:
        note = "scheme from X-Forwarded-Proto" if header(scope, b"x-forwarded-proto") else "from Forwarded"
        bases.append((fwd_scheme, own_host, (f"{note}, the request arrived as {own_scheme}://",)))
    if fwd_host != own_host:
        bases.append((own_scheme, fwd_host, ("host from X-Forwarded-Host / Forwarded",)))
    if fwd_scheme != own_scheme and fwd_host != own_host:
        bases.append((fwd_scheme, fwd_host, ("scheme and host forwarded by the proxy",)))
    if own_scheme == "http" and not proto_only:
        bases.append(("https", own_host, ("https, the request arrived as http://",)))
    for scheme, host, how in list(bases):
        name, sep, port = host.rpartition(":")
        if sep and port.isdigit() and "]" not in port:
            bases.append((scheme, name, (*how, f"without port {port}")))
    path = request_path(scope)
    paths: list[tuple[str, tuple[str, ...], str]] = [(path, (), "")]
    for prefix, source in (
        (str(scope.get("root_path", "")), "root_path"),
        (_first(header(scope, b"x-forwarded-prefix") or ""), "X-Forwarded-Prefix"),
    ):
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        if prefix and not path.startswith(prefix + "/") and path != prefix:
            paths.append((prefix + path, (f"with the path prefix {prefix} from {source}",), prefix))
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    queries: list[tuple[str, tuple[str, ...]]] = [(query, ())]
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        for variant, change in (
            (unquote(query), "the query string decoded"),
            (urlencode(pairs), "the query string re-encoded (form style)"),
            (urlencode(pairs, quote_via=quote), "the query string re-encoded (%20 style)"),
        ):
            queries.append((variant, (change,)))
    seen = {checked}
    candidates = []
    for scheme, host, how_base in bases:
        for target, how_path, prefix in paths:
            for q, how_query in queries:
                url = f"{scheme}://{host}{target}" + (f"?{q}" if q else "")
                if url not in seen:
                    seen.add(url)
                    candidates.append(Candidate(url, how_base + how_path + how_query, prefix))
    if public_url:  # the request's own URLs, for a public_url that is wrong
        candidates = [Candidate(c.url, c.how or ("the request's own URL",), c.prefix) for c in candidates]
    return candidates


def _first(value: str) -> str:
    return value.split(",", 1)[0].strip()


def _mask(url: str) -> str:
    """The URL with any password in its user info hidden."""
    scheme, sep, rest = url.partition("://")
    userinfo, at, host = rest.partition("@")
    if sep and at and "/" not in userinfo:
        return f"{scheme}://{userinfo.split(':', 1)[0]}:***@{host}"
    return url


class RefusalLog:
    """One WARNING line per cause per `interval` seconds, saying how many like it were not logged."""

    def __init__(self, interval: float = 60.0) -> None:
        self.interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def should_log(self, cause: str) -> bool:
        """True when a line for `cause` may be written now (the caller then explains and calls `warn`)."""
        last = self._last.get(cause)
        if last is not None and time.monotonic() - last < self.interval:
            self._suppressed[cause] = self._suppressed.get(cause, 0) + 1
            return False
        return True

    def warn(self, cause: str, listener: str, status_code: int, message: str) -> None:
        self._last[cause] = time.monotonic()
        suppressed = self._suppressed.pop(cause, 0)
        more = f" ({suppressed} more refused for this cause since the last line)" if suppressed else ""
        logger.warning("[%s] refused %d: %s%s", listener, status_code, message, more)

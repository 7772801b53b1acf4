"""Twilio's request signature (RequestValidator's rules, computed faster), for one or several keys."""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from urllib.parse import urlparse

from twilio.request_validator import HMAC_SHA1, HMAC_SHA256, add_port, get_signature_algorithm, remove_port

from ..events import Params

HASHES = {HMAC_SHA1: "sha1", HMAC_SHA256: "sha256"}
"""The algorithms Twilio signs with (names as in X-Twilio-Webhooks-Signature-Settings) and their hashes."""


def hash_name(algorithm: str) -> str:
    """The hashlib name for a Twilio algorithm name, compared case-insensitively as twilio does."""
    try:
        return HASHES[algorithm.strip().upper()]
    except KeyError:
        raise ValueError(
            f"unsupported signature algorithm {algorithm!r}: Twilio signs with {', '.join(HASHES)}"
        ) from None


class SignatureValidator:
    """Checks a signature for the URL Twilio called and the form it posted, against several keys in order.

    For one key it accepts and refuses exactly what twilio's `RequestValidator.validate` does for a form
    POST (the URL with and without its default port; names sorted, each name's distinct values sorted;
    HMAC; base64), but builds the signed string once, hashes with `hmac.digest` and compares with
    `hmac.compare_digest`. tests/test_signature_equivalence.py proves the two agree. With several keys
    (an auth token and its secondary), the signed string is built once and the next key is tried only
    when the ones before it did not match, so a second key costs nothing while the first one signs.
    """

    _MAX_CACHED_URLS = 1024

    def __init__(self, *keys: str, algorithm: str = HMAC_SHA1, userinfo: str | None = None) -> None:
        """`userinfo` ("user:password"): also try the URL with it, as Twilio signs a URL that carries it."""
        if not keys:
            raise ValueError("a SignatureValidator needs at least one key")
        self._keys = tuple(key.encode("utf-8") for key in keys)
        self._hash = hash_name(algorithm)
        self._userinfo = userinfo
        self._url_variants: dict[str, tuple[bytes, ...]] = {}

    def is_valid(self, url: str, params: Params, signature: str) -> bool:
        """True when `signature` is what Twilio computes for `url` and `params` with one of the keys."""
        return self.match(url, params, signature) is not None

    def match(self, url: str, params: Params, signature: str, *, body: bytes | None = None) -> int | None:
        """The index of the first key that signed `url` and `params` (or `url` and a raw `body`, as a JSON
        request without `bodySHA256` is signed) as `signature`, or None."""
        variants = self._url_variants.get(url)
        if variants is None:
            variants = self._variants(url)
        if not variants:
            return None
        signed = signed_params(params).encode("utf-8") if body is None else body
        expected = signature.encode("utf-8")
        hash_function = self._hash
        for index, key in enumerate(self._keys):
            valid = False
            for variant in variants:  # every variant is checked: no early exit that timing could reveal
                digest = base64.b64encode(hmac.digest(key, variant + signed, hash_function))
                valid |= hmac.compare_digest(digest, expected)
            if valid:
                return index
        return None

    def _variants(self, url: str) -> tuple[bytes, ...]:
        """The URL without and with its port, as RequestValidator tries them (none if it cannot parse)."""
        try:
            parsed = urlparse(url)
            urls = [remove_port(parsed), add_port(parsed)]
        except ValueError:  # e.g. a non-numeric port in the Host header: RequestValidator would raise
            urls = []
        if self._userinfo is not None:
            urls += [with_userinfo(variant, self._userinfo) for variant in urls]
        variants = tuple(variant.encode("utf-8") for variant in urls)
        if len(self._url_variants) < self._MAX_CACHED_URLS:
            self._url_variants[url] = variants
        return variants


def with_userinfo(url: str, userinfo: str) -> str:
    """`url` with `userinfo@` before its host (https://user:pass@host/...)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{userinfo}@{rest}" if sep else url


def signed_params(params: Params) -> str:
    """Names in order, each followed by its distinct values in order, as Twilio signs a form."""
    if not params.has_repeated_names:
        return "".join([name + params[name] for name in sorted(params)])
    values: dict[str, set[str]] = {}
    for name, value in params.multi_items():
        values.setdefault(name, set()).add(value)
    return "".join([name + value for name in sorted(values) for value in sorted(values[name])])


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

"""Signature validation and the URL Twilio signed, from plain ASGI scopes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from twilio.request_validator import RequestValidator

from twilio_events import ConfigurationError, TwilioEvents
from twilio_events.events import Params
from twilio_events.http.request import header
from twilio_events.security import SharedKey, SignatureValidator, callback_url, load_credentials
from twilio_events.security.signature import SignatureSettings
from twilio_events.testing import TEST_ACCOUNT_SID, sign

VECTOR_TOKEN = "12345"
VECTOR_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Digits": "1234",
    "From": "+14158675309",
    "To": "+18005551212",
    "Caller": "+14158675309",
}
VECTOR_HTTPS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_HTTPS = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
VECTOR_HTTP_1234_URL = "http://mycompany.com:1234/myapp.php?foo=1&bar=2"
VECTOR_HTTP_1234 = "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="


def scope(
    path: str = "/",
    *,
    raw_path: bytes | None = None,
    query: bytes = b"",
    headers: dict[str, str] | None = None,
    scheme: str = "http",
    server: tuple[str, int | None] | None = ("10.0.0.5", 8000),
) -> dict[str, Any]:
    """An HTTP scope as an ASGI server builds it."""
    result: dict[str, Any] = {
        "type": "http",
        "method": "POST",
        "scheme": scheme,
        "path": path,
        "query_string": query,
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1"))
            for name, value in (headers or {}).items()
        ],
        "server": server,
    }
    if raw_path is not None:
        result["raw_path"] = raw_path
    return result


# --- signatures -----------------------------------------------------------------------------------------


def test_sign_reproduces_twilios_published_vectors() -> None:
    assert sign(VECTOR_HTTPS_URL, VECTOR_PARAMS, VECTOR_TOKEN) == VECTOR_HTTPS
    assert sign(VECTOR_HTTP_1234_URL, VECTOR_PARAMS, VECTOR_TOKEN) == VECTOR_HTTP_1234


def test_the_validator_accepts_the_vectors() -> None:
    validator = SignatureValidator(VECTOR_TOKEN)

    assert validator.is_valid(VECTOR_HTTPS_URL, Params(VECTOR_PARAMS), VECTOR_HTTPS)
    assert validator.is_valid(VECTOR_HTTP_1234_URL, Params(VECTOR_PARAMS), VECTOR_HTTP_1234)


@pytest.mark.parametrize(
    ("url", "params", "signature", "token"),
    [
        (VECTOR_HTTPS_URL, {**VECTOR_PARAMS, "Digits": "1235"}, VECTOR_HTTPS, VECTOR_TOKEN),
        (VECTOR_HTTPS_URL, {**VECTOR_PARAMS, "Extra": ""}, VECTOR_HTTPS, VECTOR_TOKEN),
        (
            VECTOR_HTTPS_URL,
            {k: v for k, v in VECTOR_PARAMS.items() if k != "Caller"},
            VECTOR_HTTPS,
            VECTOR_TOKEN,
        ),
        (VECTOR_HTTPS_URL, {}, VECTOR_HTTPS, VECTOR_TOKEN),
        ("https://mycompany.com/myapp.php?foo=1&bar=3", VECTOR_PARAMS, VECTOR_HTTPS, VECTOR_TOKEN),
        ("http://mycompany.com/myapp.php?foo=1&bar=2", VECTOR_PARAMS, VECTOR_HTTPS, VECTOR_TOKEN),
        (VECTOR_HTTPS_URL, VECTOR_PARAMS, VECTOR_HTTPS, "123456"),
        (VECTOR_HTTPS_URL, VECTOR_PARAMS, VECTOR_HTTPS.lower(), VECTOR_TOKEN),
        (VECTOR_HTTPS_URL, VECTOR_PARAMS, "", VECTOR_TOKEN),
    ],
    ids=[
        "changed-value",
        "added-param",
        "missing-param",
        "no-params",
        "changed-query",
        "changed-scheme",
        "token",
        "case",
        "empty",
    ],
)
def test_the_validator_refuses_anything_changed(
    url: str, params: dict[str, str], signature: str, token: str
) -> None:
    assert not SignatureValidator(token).is_valid(url, Params(params), signature)


def test_the_validator_tolerates_an_explicit_default_port_like_twilio() -> None:
    validator = SignatureValidator(VECTOR_TOKEN)

    assert validator.is_valid(
        "https://mycompany.com:443/myapp.php?foo=1&bar=2", Params(VECTOR_PARAMS), VECTOR_HTTPS
    )


def test_repeated_parameters_are_all_signed() -> None:
    pairs = [("CallStatus", "ringing"), ("Tag", "b"), ("Tag", "a")]
    signature = sign("https://example.com/", pairs, "tok")
    validator = SignatureValidator("tok")

    assert validator.is_valid("https://example.com/", Params(pairs), signature)
    assert not validator.is_valid("https://example.com/", Params(pairs[:2]), signature)
    # Twilio's scheme: names sorted, then each name's values sorted, concatenated with no separators.
    assert signature == RequestValidator("tok").compute_signature(
        "https://example.com/CallStatusringingTagaTagb", {}
    )


# --- headers --------------------------------------------------------------------------------------------


def test_header_gives_the_first_value_or_none() -> None:
    request = scope(headers={"Host": "example.com"})
    request["headers"] += [(b"x-twilio-signature", b"first"), (b"x-twilio-signature", b"second")]

    assert header(request, b"x-twilio-signature") == "first"
    assert header(request, b"host") == "example.com"
    assert header(request, b"missing") is None


def test_header_decodes_latin_1() -> None:
    request = scope()
    request["headers"] = [(b"x-name", "café".encode("latin-1"))]

    assert header(request, b"x-name") == "café"


# --- the URL that was signed -----------------------------------------------------------------------------


def test_callback_url_uses_scheme_host_raw_path_and_query() -> None:
    request = scope(
        "/hooks/café", raw_path=b"/hooks/caf%c3%a9", query=b"a=1&b=%2F", headers={"Host": "example.com"}
    )

    assert callback_url(request) == "http://example.com/hooks/caf%c3%a9?a=1&b=%2F"


def test_callback_url_percent_encodes_the_path_when_raw_path_is_missing() -> None:
    request = scope("/hooks/café status", headers={"Host": "example.com"})

    assert callback_url(request) == "http://example.com/hooks/caf%C3%A9%20status"


def test_callback_url_keeps_characters_a_path_may_carry() -> None:
    request = scope("/a:b@c;d=e,f+g", headers={"Host": "example.com"})

    assert callback_url(request) == "http://example.com/a:b@c;d=e,f+g"


def test_callback_url_without_a_query_has_no_question_mark() -> None:
    assert callback_url(scope("/x", raw_path=b"/x", headers={"Host": "h"})) == "http://h/x"


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (("10.0.0.5", 8000), "http://10.0.0.5:8000/"),
        (("sock", None), "http://sock/"),
        (None, "http://localhost/"),
    ],
)
def test_callback_url_without_a_host_header_uses_the_server_address(
    server: tuple[str, int | None] | None, expected: str
) -> None:
    assert callback_url(scope(raw_path=b"/", server=server)) == expected


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://abc.ngrok.app", "https://abc.ngrok.app/hooks?x=1"),
        ("https://abc.ngrok.app/", "https://abc.ngrok.app/hooks?x=1"),
        ("https://example.com/prefix", "https://example.com/prefix/hooks?x=1"),
    ],
)
def test_public_url_replaces_scheme_and_host(public_url: str, expected: str) -> None:
    request = scope("/hooks", raw_path=b"/hooks", query=b"x=1", headers={"Host": "internal:8000"})

    assert callback_url(request, public_url) == expected
    assert callback_url(request, public_url, trust_forwarded_headers=True) == expected


FORWARDED_HEADERS = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "public.example.com",
    "Forwarded": "proto=https;host=forwarded.example.com",
}


def test_forwarded_headers_are_ignored_when_not_trusted() -> None:
    request = scope(raw_path=b"/", headers={"Host": "internal:8000", **FORWARDED_HEADERS})

    assert callback_url(request) == "http://internal:8000/"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"X-Forwarded-Proto": "https"}, "https://internal:8000/"),
        ({"X-Forwarded-Host": "public.example.com"}, "http://public.example.com/"),
        (
            {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.com"},
            "https://public.example.com/",
        ),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "public.example.com",
                "X-Forwarded-Port": "443",
            },
            "https://public.example.com/",
        ),
        (
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "public.example.com",
                "X-Forwarded-Port": "8443",
            },
            "https://public.example.com:8443/",
        ),
        (
            {"X-Forwarded-Proto": "http", "X-Forwarded-Host": "public.example.com", "X-Forwarded-Port": "80"},
            "http://public.example.com/",
        ),
        (
            {"X-Forwarded-Host": "public.example.com:9000", "X-Forwarded-Port": "8443"},
            "http://public.example.com:9000/",
        ),
        (
            {"X-Forwarded-Proto": "https, http", "X-Forwarded-Host": "a.example.com, b.internal"},
            "https://a.example.com/",
        ),
        ({"Forwarded": "proto=https;host=forwarded.example.com"}, "https://forwarded.example.com/"),
        (
            {"Forwarded": 'Proto=https; Host="forwarded.example.com:8443"'},
            "https://forwarded.example.com:8443/",
        ),
        (
            {"Forwarded": "for=192.0.2.60;proto=https, for=10.0.0.1;proto=http;host=x"},
            "https://internal:8000/",
        ),
        ({"Forwarded": "for=192.0.2.60"}, "http://internal:8000/"),
        (FORWARDED_HEADERS, "https://forwarded.example.com/"),
    ],
    ids=[
        "proto-only",
        "host-only",
        "proto-and-host",
        "default-https-port",
        "other-port",
        "default-http-port",
        "host-already-has-port",
        "lists-take-the-first",
        "forwarded",
        "forwarded-quoted-and-cased",
        "forwarded-first-element",
        "forwarded-for-only",
        "forwarded-wins",
    ],
)
def test_forwarded_headers_when_trusted(headers: dict[str, str], expected: str) -> None:
    request = scope(raw_path=b"/", headers={"Host": "internal:8000", **headers})

    assert callback_url(request, trust_forwarded_headers=True) == expected


# --- credentials ----------------------------------------------------------------------------------------


def test_a_token_list_keeps_the_primary_as_the_apps_auth_token() -> None:
    app = TwilioEvents(auth_token=["new", "old"], account_sid=TEST_ACCOUNT_SID)

    assert app.auth_token == "new"
    assert app.account_sid == TEST_ACCOUNT_SID


def test_a_token_map_makes_the_first_account_the_main_one_unless_account_sid_says() -> None:
    first, second = "AC" + "1" * 32, "AC" + "2" * 32

    assert TwilioEvents(auth_token={first: "a", second: ["b", "c"]}).account_sid == first
    chosen = TwilioEvents(auth_token={first: "a", second: ["b", "c"]}, account_sid=second)
    assert (chosen.account_sid, chosen.auth_token) == (second, "b")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"auth_token": {"not-a-sid": "t"}}, "auth_token keys are AccountSids"),
        ({"auth_token": {}}, "names no account"),
        ({"auth_token": {"AC" + "1" * 32: "t"}, "account_sid": "AC" + "2" * 32}, "has no token"),
        ({"auth_token": [" ", ""]}, "holds no token"),
        ({"auth_token": "t", "shared_keys": {"k": ""}}, "needs its secret"),
        ({"auth_token": "t", "basic_auth": ("user", "")}, "basic_auth is (user, password)"),
        ({"auth_token": "t", "basic_auth": ("us:er", "p")}, "no ':' in the user name"),
        ({"shared_keys": {}}, "no Twilio auth token is configured"),
    ],
)
def test_configuration_mistakes_are_named(settings: dict[str, Any], message: str) -> None:
    with pytest.raises((ConfigurationError, ValueError), match=re.escape(message)):
        TwilioEvents(**settings).check_configuration()


def test_a_shared_key_with_an_algorithm_twilio_does_not_sign_with_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported signature algorithm 'HMAC_MD5'"):
        SharedKey("secret", "HMAC_MD5")


def test_shared_keys_and_basic_auth_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_SHARED_KEYS", "key_a=secret-a, key_b=secret-b")
    monkeypatch.setenv("TWILIO_EVENTS_BASIC_AUTH", "twilio:pass:word")

    credentials, _, token = load_credentials(None, None, None, None)

    assert token is None
    assert credentials.shared_keys == {"key_a": SharedKey("secret-a"), "key_b": SharedKey("secret-b")}
    assert credentials.basic_auth == ("twilio", "pass:word")


@pytest.mark.parametrize("value", ["key_a", "=secret", "key_a=s,oops"])
def test_a_malformed_shared_keys_variable_is_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_SHARED_KEYS", value)

    with pytest.raises(ValueError, match="TWILIO_EVENTS_SHARED_KEYS is `key_id=secret` pairs"):
        load_credentials("t", None, None, None)


def test_no_representation_shows_a_secret() -> None:
    credentials, _, _ = load_credentials(
        {"AC" + "1" * 32: ["token-one", "token-two"]}, None, {"key": "shared-secret"}, ("u", "basic-pw")
    )
    shown = repr(credentials) + credentials.describe()

    for secret in ("token-one", "token-two", "shared-secret", "basic-pw"):
        assert secret not in shown
    assert "the primary and secondary auth token of AC111" in credentials.describe()


def test_the_validator_reports_which_key_matched_and_refuses_unknown_algorithms() -> None:
    validator = SignatureValidator("old", VECTOR_TOKEN)

    assert validator.match(VECTOR_HTTPS_URL, Params(VECTOR_PARAMS), VECTOR_HTTPS) == 1
    assert validator.match(VECTOR_HTTPS_URL, Params(VECTOR_PARAMS), "x") is None
    with pytest.raises(ValueError, match="unsupported signature algorithm 'HMAC_SHA512'"):
        SignatureValidator("k", algorithm="HMAC_SHA512")
    with pytest.raises(ValueError, match="at least one key"):
        SignatureValidator()


def test_the_signature_settings_header_is_parsed_like_twilio() -> None:
    parsed = SignatureSettings.parse("key=webhooks_sharedkey_01,algorithm=HMAC_SHA256")

    assert parsed == SignatureSettings("webhooks_sharedkey_01", "HMAC_SHA256")
    spaced = SignatureSettings.parse(" algorithm = hmac_sha256 , key = k ")
    assert spaced == SignatureSettings("k", "hmac_sha256")
    assert SignatureSettings.parse("key=k") == SignatureSettings("k", "HMAC_SHA1")  # twilio's default
    assert SignatureSettings.parse("") == SignatureSettings(None, "HMAC_SHA1")

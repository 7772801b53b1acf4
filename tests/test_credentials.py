"""Every way Twilio signs or authenticates, over a real uvicorn server, and every refusal explained.

HMAC-SHA1 requests are signed with twilio's own RequestValidator (through `sign`); shared-key requests
with the HMAC-SHA256 written out below from hmac, hashlib and base64, independent of the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from twilio.request_validator import HMAC_SHA256, RequestValidator

from twilio_events import CallEvent, ConfigurationError, TwilioEvents
from twilio_events.security import DigestAuth, Refusal
from twilio_events.testing import call_payload, sign

from .conftest import DEADLINE, FORM, TOKEN, LiveServer, encode_form, wait_for

OLD = "old-token-0123456789abcdef012345"
NEW = "new-token-fedcba9876543210fedcba"
SID_A = "AC" + "a" * 32
SID_B = "AC" + "b" * 32
TOKEN_A = "token-of-subaccount-a-0123456789"
TOKEN_B = "token-of-subaccount-b-9876543210"
KEY_1, SECRET_1 = "webhooks_sharedkey_01JAAAAAAAAAAAAAAAAAAAAAAA", "shared-secret-one-0123456789abcdef"
KEY_2, SECRET_2 = "webhooks_sharedkey_01JBBBBBBBBBBBBBBBBBBBBBBB", "shared-secret-two-fedcba9876543210"
SECRETS = (TOKEN, OLD, NEW, TOKEN_A, TOKEN_B, SECRET_1, SECRET_2, "s3cret-Pa55")
SETTINGS = "X-Twilio-Webhooks-Signature-Settings"


def hmac_sha256_signature(url: str, params: Mapping[str, str], secret: str) -> str:
    """Twilio's signed string (the URL, then each name and value, names sorted), HMAC-SHA256, base64."""
    data = url + "".join(name + params[name] for name in sorted(params))
    return base64.b64encode(hmac.new(secret.encode(), data.encode(), hashlib.sha256).digest()).decode()


class Handled:
    def __init__(self, app: TwilioEvents) -> None:
        self.sids: list[str] = []
        app.call.on_any(self.record)

    def record(self, event: CallEvent) -> None:
        self.sids.append(event.call_sid)


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    ours = [r for r in caplog.records if r.name == "twilio_events"]
    return [r.getMessage() for r in ours if r.levelno >= logging.WARNING]


def assert_no_secret_in(text: str, *signatures: str) -> None:
    for secret in SECRETS:
        assert secret not in text
    for signature in signatures:
        assert signature not in text


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="twilio_events")
    return caplog


# --- rotation -------------------------------------------------------------------------------------------


def test_old_and_new_token_are_both_accepted_and_the_log_says_which_signed(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=[OLD, NEW])
    handled = Handled(app)
    live = serve(app)
    before, after = call_payload("ringing"), call_payload("completed")

    assert live.callback(before, token=OLD).status_code == 200
    assert live.callback(after, token=NEW).status_code == 200

    assert handled.sids == [before["CallSid"], after["CallSid"]]
    assert "callbacks are signed with the primary auth token" in logs.text
    assert "now signed with the secondary auth token (until now: the primary auth token)" in logs.text
    assert "the secondary one was promoted; make it the first token" in logs.text
    # The request's own line is written once the answer has gone: wait for it rather than race it.
    wait_for(lambda: "-> 200 in" in logs.text and ", signed with the secondary" in logs.text, "its log line")
    assert warnings_of(logs) == []
    assert_no_secret_in(logs.text)


@pytest.mark.parametrize(
    "environment",
    [
        {"TWILIO_AUTH_TOKEN": f"{OLD},{NEW}"},
        {"TWILIO_AUTH_TOKEN": f" {OLD} , {NEW} "},
        {"TWILIO_AUTH_TOKEN": OLD, "TWILIO_SECONDARY_AUTH_TOKEN": NEW},
    ],
    ids=["comma-separated", "spaces", "secondary-variable"],
)
def test_tokens_from_the_environment(
    serve: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    app = TwilioEvents()
    live = serve(app)

    assert app.auth_token == OLD  # the primary: what app.client and the test client use
    assert live.callback(call_payload(), token=OLD).status_code == 200
    assert live.callback(call_payload(), token=NEW).status_code == 200
    assert live.callback(call_payload(), token="a-third-token").status_code == 403


def test_after_the_rotation_the_old_token_is_refused_and_the_log_says_why(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=NEW)
    handled = Handled(app)
    live = serve(app)
    payload = call_payload()
    signature = sign(live.url(), payload, OLD)

    response = live.callback(payload, signature=signature)

    assert response.status_code == 403
    assert handled.sids == []
    [line] = warnings_of(logs)
    assert f"does not match {live.url()} with the primary auth token" in line
    assert "No configured secret matches it" in line
    assert "new primary token after a rotation" in line
    assert_no_secret_in(logs.text, signature)


# --- subaccounts ----------------------------------------------------------------------------------------


@pytest.fixture
def two_accounts(serve: Callable[..., LiveServer]) -> tuple[LiveServer, Handled]:
    app = TwilioEvents(auth_token={SID_A: TOKEN_A, SID_B: [TOKEN_B]})
    return serve(app), Handled(app)


def test_each_subaccount_is_checked_with_its_own_token(
    two_accounts: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, handled = two_accounts
    for_a, for_b = call_payload(AccountSid=SID_A), call_payload(AccountSid=SID_B)

    assert live.callback(for_a, token=TOKEN_A).status_code == 200
    assert live.callback(for_b, token=TOKEN_B).status_code == 200

    assert handled.sids == [for_a["CallSid"], for_b["CallSid"]]
    assert f"callbacks for {SID_A} are signed with the primary auth token" in logs.text
    assert f"callbacks for {SID_B} are signed with the primary auth token" in logs.text


def test_a_callback_signed_with_another_subaccounts_token_is_refused(
    two_accounts: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, handled = two_accounts

    response = live.callback(call_payload(AccountSid=SID_A), token=TOKEN_B)

    assert response.status_code == 403
    assert handled.sids == []
    [line] = warnings_of(logs)
    assert f"It matches the primary auth token of {SID_B}, but the callback says AccountSid {SID_A}" in line
    assert "The request was refused" in line
    assert_no_secret_in(logs.text)


def test_an_account_without_a_token_is_refused(
    two_accounts: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, _ = two_accounts
    other = "AC" + "c" * 32

    assert live.callback(call_payload(AccountSid=other), token=TOKEN_A).status_code == 403
    [line] = warnings_of(logs)
    assert f"the callback is for account {other}, which has no token here" in line
    assert_no_secret_in(logs.text)


def test_account_sid_with_one_token_still_refuses_other_accounts(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN_A, account_sid=SID_A))

    assert live.callback(call_payload(AccountSid=SID_A), token=TOKEN_A).status_code == 200
    refused = live.callback(call_payload(AccountSid=SID_B), token=TOKEN_A)

    assert refused.status_code == 403 and "another Twilio account" in refused.text
    [line] = warnings_of(logs)
    assert f"the callback is for account {SID_B}, but this service accepts only {SID_A}" in line


# --- shared keys ----------------------------------------------------------------------------------------


@pytest.fixture
def shared(serve: Callable[..., LiveServer]) -> tuple[LiveServer, Handled]:
    app = TwilioEvents(auth_token=OLD, shared_keys={KEY_1: SECRET_1, KEY_2: SECRET_2})
    return serve(app), Handled(app)


def shared_key_callback(
    live: LiveServer, params: dict[str, str], key_id: str, secret: str, algorithm: str = HMAC_SHA256
) -> Any:
    signature = hmac_sha256_signature(live.url(), params, secret)
    return live.callback(
        params, signature=signature, headers={SETTINGS: f"key={key_id},algorithm={algorithm}"}
    )


def test_the_independent_hmac_sha256_agrees_with_twilio_python() -> None:
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309"}
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"

    expected = RequestValidator(SECRET_1).compute_signature(url, params, algorithm=HMAC_SHA256)
    assert hmac_sha256_signature(url, params, SECRET_1) == expected


def test_two_shared_keys_are_both_accepted_and_logged_by_id(
    shared: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, handled = shared
    first, second = call_payload(), call_payload()

    assert shared_key_callback(live, first, KEY_1, SECRET_1).status_code == 200
    assert shared_key_callback(live, second, KEY_2, SECRET_2).status_code == 200

    assert handled.sids == [first["CallSid"], second["CallSid"]]
    assert f"callbacks are signed with the shared key {KEY_1}" in logs.text
    assert f"now signed with the shared key {KEY_2} (until now: the shared key {KEY_1})" in logs.text
    assert_no_secret_in(logs.text)


def test_the_auth_token_still_works_next_to_shared_keys(shared: tuple[LiveServer, Handled]) -> None:
    live, _ = shared

    assert live.callback(call_payload(), token=OLD).status_code == 200


@pytest.mark.parametrize(
    ("how", "cause"),
    [
        ("unknown key id", "which is not configured"),
        ("sha1 announced", "but it is configured for HMAC_SHA256"),
        ("unsupported algorithm", "which this service does not support"),
        ("tampered body", "does not match"),
        ("signed with the other key", "It matches the shared key"),
        ("auth token with a key header", "It matches the primary auth token instead"),
    ],
)
def test_shared_key_refusals(
    shared: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture, how: str, cause: str
) -> None:
    live, handled = shared
    params = call_payload()
    url = live.url()
    key, secret, algorithm = KEY_1, SECRET_1, HMAC_SHA256
    signature = hmac_sha256_signature(url, params, secret)
    sent = dict(params)
    if how == "unknown key id":
        key = "webhooks_sharedkey_01JZZZZZZZZZZZZZZZZZZZZZZZ"
    elif how == "sha1 announced":
        algorithm = "HMAC_SHA1"
        signature = RequestValidator(secret).compute_signature(url, params)
    elif how == "unsupported algorithm":
        algorithm = "HMAC_SHA512"
    elif how == "tampered body":
        sent["CallStatus"] = "completed"
    elif how == "signed with the other key":
        signature = hmac_sha256_signature(url, params, SECRET_2)
    elif how == "auth token with a key header":
        signature = sign(url, params, OLD)

    settings = {SETTINGS: f"key={key},algorithm={algorithm}"}
    response = live.callback(sent, signature=signature, headers=settings)

    assert response.status_code == 403
    assert handled.sids == []
    [line] = warnings_of(logs)
    assert cause in line
    assert_no_secret_in(logs.text, signature)


def test_a_shared_key_signature_without_shared_keys_configured_is_refused(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=OLD))

    response = shared_key_callback(live, call_payload(), KEY_1, SECRET_1)

    assert response.status_code == 403
    [line] = warnings_of(logs)
    assert "but no shared key is configured" in line


def test_shared_keys_alone_from_the_environment(
    serve: Callable[..., LiveServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_EVENTS_SHARED_KEYS", f"{KEY_1}={SECRET_1},{KEY_2}={SECRET_2}")
    live = serve(TwilioEvents())

    assert shared_key_callback(live, call_payload(), KEY_2, SECRET_2).status_code == 200
    assert live.callback(call_payload(), token=OLD).status_code == 403  # no auth token configured


# --- HTTP Basic authentication --------------------------------------------------------------------------

USER, PASSWORD = "twilio", "s3cret-Pa55"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def with_basic_auth(serve: Callable[..., LiveServer]) -> tuple[LiveServer, Handled]:
    app = TwilioEvents(auth_token=TOKEN, basic_auth=(USER, PASSWORD))
    return serve(app), Handled(app)


def test_basic_auth_challenge_then_the_retried_request_is_accepted(
    with_basic_auth: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, handled = with_basic_auth
    params = call_payload()
    # Twilio signs the URL it was given, which carries the user info; it sends the credentials on the retry.
    signed_url = live.url().replace("http://", f"http://{USER}:{PASSWORD}@")

    first = live.callback(params, signed_url=signed_url)
    retry = live.callback(params, signed_url=signed_url, headers={"Authorization": basic(USER, PASSWORD)})

    assert first.status_code == 401
    assert first.headers["WWW-Authenticate"].startswith('Basic realm="')
    assert retry.status_code == 200
    assert handled.sids == [params["CallSid"]]
    assert warnings_of(logs) == []  # the challenge is part of Twilio's protocol, not a refusal to explain


def test_basic_auth_with_a_signature_over_the_url_without_user_info(
    with_basic_auth: tuple[LiveServer, Handled],
) -> None:
    live, handled = with_basic_auth  # credentials from a Webhooks AuthProfile: the URL has no user info

    response = live.callback(call_payload(), headers={"Authorization": basic(USER, PASSWORD)})

    assert response.status_code == 200 and len(handled.sids) == 1


@pytest.mark.parametrize(
    ("authorization", "status", "cause"),
    [
        (basic(USER, "wrong"), 403, "the password differs"),
        (basic("someone", PASSWORD), 403, "the user name differs"),
        ("Basic not-base64!", 403, "not valid HTTP Basic credentials"),
        ("Bearer abc", 401, None),
    ],
    ids=["password", "user", "malformed", "other-scheme"],
)
def test_wrong_basic_credentials_are_refused(
    with_basic_auth: tuple[LiveServer, Handled],
    logs: pytest.LogCaptureFixture,
    authorization: str,
    status: int,
    cause: str | None,
) -> None:
    live, handled = with_basic_auth

    response = live.callback(call_payload(), headers={"Authorization": authorization})

    assert response.status_code == status
    assert handled.sids == []
    if cause is None:
        assert response.headers["WWW-Authenticate"].startswith("Basic ")
        assert warnings_of(logs) == []
    else:
        [line] = warnings_of(logs)
        assert cause in line
    assert_no_secret_in(logs.text)


def test_basic_auth_is_checked_before_the_body_is_read(with_basic_auth: tuple[LiveServer, Handled]) -> None:
    live, _ = with_basic_auth

    response = live.request("POST", content=b"x" * 100_000, headers={"Content-Type": "text/plain"})

    assert response.status_code == 401


# --- diagnosis ------------------------------------------------------------------------------------------
# Served with proxy_headers=False, as app.run() and twilio-events run do unless trust_forwarded_headers is
# set: uvicorn's own default would apply X-Forwarded-Proto from 127.0.0.1 before the app sees the request.


def test_signed_for_https_arriving_as_http_is_refused_and_explained(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    app = TwilioEvents(auth_token=TOKEN)
    handled = Handled(app)
    live = serve(app, proxy_headers=False)
    params = call_payload()
    https_url = live.url().replace("http://", "https://")

    response = live.callback(params, signed_url=https_url, headers={"X-Forwarded-Proto": "https"})

    assert response.status_code == 403
    assert handled.sids == []
    [line] = warnings_of(logs)
    assert f"does not match {live.url()}" in line
    assert f"It matches {https_url} (scheme from X-Forwarded-Proto, the request arrived as http://)" in line
    assert "but the request arrived as http://" in line
    assert "set trust_forwarded_headers=True" in line and f"public_url='{https_url.rstrip('/')}'" in line
    assert_no_secret_in(logs.text)


def test_https_without_any_proxy_header_is_still_diagnosed(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), proxy_headers=False)
    https_url = live.url().replace("http://", "https://")

    assert live.callback(call_payload(), signed_url=https_url).status_code == 403
    [line] = warnings_of(logs)
    assert f"It matches {https_url} (https, the request arrived as http://)" in line


def test_the_setting_the_diagnosis_names_does_make_it_pass(serve: Callable[..., LiveServer]) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN, trust_forwarded_headers=True), proxy_headers=False)
    https_url = live.url().replace("http://", "https://")

    response = live.callback(call_payload(), signed_url=https_url, headers={"X-Forwarded-Proto": "https"})

    assert response.status_code == 200


def test_a_tunnel_host_is_named_with_the_public_url_to_set(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), proxy_headers=False)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "abc.ngrok.app"}

    response = live.callback(call_payload(), signed_url="https://abc.ngrok.app/", headers=forwarded)

    assert response.status_code == 403
    [line] = warnings_of(logs)
    assert "It matches https://abc.ngrok.app/ (scheme and host forwarded by the proxy)" in line
    assert "public_url='https://abc.ngrok.app'" in line


def test_a_wrong_public_url_is_named(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN, public_url="https://old.ngrok.app"), proxy_headers=False)

    assert live.callback(call_payload()).status_code == 403  # signed for the URL it was sent to
    [line] = warnings_of(logs)
    assert "does not match https://old.ngrok.app/" in line
    assert "public_url='https://old.ngrok.app' is not the URL Twilio calls" in line
    assert f"set public_url='{live.base_url}'" in line


def test_a_path_prefix_removed_by_a_proxy_is_named(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), proxy_headers=False)
    stripped = {"X-Forwarded-Prefix": "/twilio"}

    response = live.callback(call_payload(), signed_url=live.url("/twilio/"), headers=stripped)

    assert response.status_code == 403
    [line] = warnings_of(logs)
    assert f"It matches {live.url('/twilio/')} (with the path prefix /twilio from X-Forwarded-Prefix)" in line
    assert f"set public_url='{live.base_url}/twilio'" in line


def test_a_re_encoded_query_string_is_named(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), proxy_headers=False)

    response = live.callback(call_payload(), "/?name=a+b", signed_url=live.url("/?name=a%20b"))

    assert response.status_code == 403
    [line] = warnings_of(logs)
    assert "the query string re-encoded" in line and "pass the query unchanged" in line


def test_no_signature_header_is_explained(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), proxy_headers=False)

    response = live.request("POST", content=encode_form(call_payload()), headers={"Content-Type": FORM})

    assert response.status_code == 403
    [line] = warnings_of(logs)
    assert "no X-Twilio-Signature header: is this request from Twilio?" in line


def test_one_warning_per_cause_however_many_refusals(
    serve: Callable[..., LiveServer], logs: pytest.LogCaptureFixture
) -> None:
    live = serve(TwilioEvents(auth_token=TOKEN), proxy_headers=False)

    for _ in range(5):
        assert live.callback(call_payload(), token=NEW).status_code == 403
        assert live.request("POST", content=b"", headers={"Content-Type": FORM}).status_code == 403

    lines = warnings_of(logs)
    assert len(lines) == 2
    assert "No configured secret matches it" in lines[0]
    assert "no X-Twilio-Signature header" in lines[1]
    assert "refused 403: Forbidden" not in logs.text  # no second, unexplained line per refusal


# --- HTTP Digest authentication, and both schemes through urllib's own client handlers --------------------


def urllib_post(live: LiveServer, handler: urllib.request.BaseHandler, params: dict[str, str]) -> int:
    """POST a signed callback with urllib, whose handler answers the server's challenge by itself."""
    request = urllib.request.Request(
        live.url(),
        data=encode_form(params),
        headers={"Content-Type": FORM, "X-Twilio-Signature": sign(live.url(), params, TOKEN)},
    )
    try:
        with urllib.request.build_opener(handler).open(request, timeout=DEADLINE) as response:
            status: int = response.status
    except urllib.error.HTTPError as error:
        status = error.code
        error.close()
    return status


def password_manager(live: LiveServer, user: str, password: str) -> urllib.request.HTTPPasswordMgr:
    manager = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    manager.add_password(None, live.base_url, user, password)
    return manager


@pytest.fixture
def with_digest_auth(serve: Callable[..., LiveServer]) -> tuple[LiveServer, Handled]:
    app = TwilioEvents(auth_token=TOKEN, digest_auth=(USER, PASSWORD))
    return serve(app), Handled(app)


def test_digest_challenge_and_login_by_urllibs_digest_client(
    with_digest_auth: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, handled = with_digest_auth
    params = call_payload()

    challenge = live.callback(params)
    status = urllib_post(
        live, urllib.request.HTTPDigestAuthHandler(password_manager(live, USER, PASSWORD)), params
    )

    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"].startswith('Digest realm="twilio_events", qop="auth"')
    assert status == 200
    assert handled.sids == [params["CallSid"]]
    assert warnings_of(logs) == []


def test_a_wrong_digest_password_is_refused_and_explained(
    with_digest_auth: tuple[LiveServer, Handled], logs: pytest.LogCaptureFixture
) -> None:
    live, handled = with_digest_auth

    status = urllib_post(
        live, urllib.request.HTTPDigestAuthHandler(password_manager(live, USER, "nope")), call_payload()
    )

    assert status == 403
    assert handled.sids == []
    [line] = warnings_of(logs)
    assert "wrong HTTP Digest credentials (the password differs)" in line
    assert_no_secret_in(logs.text)


def test_basic_login_by_urllibs_basic_client(with_basic_auth: tuple[LiveServer, Handled]) -> None:
    live, handled = with_basic_auth

    status = urllib_post(
        live, urllib.request.HTTPBasicAuthHandler(password_manager(live, USER, PASSWORD)), call_payload()
    )

    assert status == 200 and len(handled.sids) == 1


def test_basic_and_digest_together_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="choose HTTP Basic or Digest"):
        TwilioEvents(auth_token=TOKEN, basic_auth=(USER, PASSWORD), digest_auth=(USER, PASSWORD))


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def digest_scope(authorization: str, target: str = "/hook?a=1") -> dict[str, Any]:
    path, _, query = target.partition("?")
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"authorization", authorization.encode())],
    }


def digest_answer(challenge: str, *, password: str = PASSWORD, uri: str = "/hook?a=1") -> str:
    """The Authorization a Digest client sends (RFC 7616, MD5, qop=auth), written out independently."""
    nonce = challenge.split('nonce="', 1)[1].split('"', 1)[0]

    def md5(text: str) -> str:
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()

    ha1, ha2 = md5(f"{USER}:twilio_events:{password}"), md5(f"POST:{uri}")
    response = md5(f"{ha1}:{nonce}:00000001:c0ffee:auth:{ha2}")
    return (
        f'Digest username="{USER}", realm="twilio_events", nonce="{nonce}", uri="{uri}", '
        f'response="{response}", qop=auth, nc=00000001, cnonce="c0ffee", algorithm=MD5'
    )


def test_digest_nonces_expire_and_are_bound_to_the_service_and_the_request() -> None:
    clock = Clock()
    digest = DigestAuth(USER, PASSWORD, clock=clock)
    challenge = digest.challenge["WWW-Authenticate"]

    digest.check(digest_scope(digest_answer(challenge)))  # accepted: no exception
    # Another process with the same credentials accepts the nonce: nothing is shared but the password.
    DigestAuth(USER, PASSWORD, clock=clock).check(digest_scope(digest_answer(challenge)))

    with pytest.raises(Refusal) as wrong_uri:
        digest.check(digest_scope(digest_answer(challenge, uri="/other"), "/hook?a=1"))
    assert (wrong_uri.value.status_code, wrong_uri.value.cause) == (403, "auth-wrong")

    forged = challenge.replace('nonce="', 'nonce="f', 1)
    with pytest.raises(Refusal) as not_ours:
        digest.check(digest_scope(digest_answer(forged)))
    assert "a nonce this service never issued" in not_ours.value.detail

    clock.now += 301
    with pytest.raises(Refusal) as stale:
        digest.check(digest_scope(digest_answer(challenge)))
    assert stale.value.status_code == 401
    assert stale.value.headers is not None and stale.value.headers["WWW-Authenticate"].endswith("stale=true")

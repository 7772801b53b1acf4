"""The fast signature check accepts and refuses exactly what twilio's RequestValidator does."""

from __future__ import annotations

import hashlib

from hypothesis import example, given, settings
from hypothesis import strategies as st
from twilio.request_validator import HMAC_SHA256, RequestValidator

from twilio_events.events import Params
from twilio_events.security import SignatureValidator

TOKEN = "12345"

hosts = st.sampled_from(["mycompany.com", "abc.ngrok.app", "127.0.0.1", "example.com", "xn--caf-dma.example"])
ports = st.one_of(st.none(), st.sampled_from([80, 443, 1234, 8090]))
path_text = st.text(alphabet="abcXYZ019-._~/%20é", max_size=20)
query_text = st.text(alphabet="abc=&123%+é", max_size=20)
names = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
values = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https"]))
    port = draw(ports)
    netloc = draw(hosts) + (f":{port}" if port is not None else "")
    url = f"{scheme}://{netloc}/{draw(path_text)}"
    query = draw(query_text)
    if draw(st.booleans()):
        query += ("&" if query else "") + "bodySHA256=" + hashlib.sha256(query.encode()).hexdigest()
    return url + ("?" + query if query else "")


pairs_lists = st.lists(
    st.one_of(
        st.tuples(names, values),
        st.tuples(st.sampled_from(["CallSid", "From", "To", "Body"]), values),  # repeated names
    ),
    max_size=8,
)


def twilio_accepts(
    url: str, pairs: list[tuple[str, str]], signature: str, algorithm: str | None = None, key: str = TOKEN
) -> bool:
    try:
        return bool(RequestValidator(key).validate(url, Params(pairs), signature, algorithm))
    except ValueError:  # RequestValidator raises for URLs it cannot parse; the app refuses them
        return False


@settings(max_examples=400)
@given(
    url=urls(), pairs=pairs_lists, signed_url=urls(), tamper=st.sampled_from(["none", "value", "url", "sig"])
)
def test_same_verdict_as_request_validator(
    url: str, pairs: list[tuple[str, str]], signed_url: str, tamper: str
) -> None:
    signature = RequestValidator(TOKEN).compute_signature(url, Params(pairs))
    if tamper == "value" and pairs:
        pairs = [*pairs[:-1], (pairs[-1][0], pairs[-1][1] + "x")]
    elif tamper == "url":
        url = signed_url
    elif tamper == "sig":
        signature = signature[:-2] + "A="

    expected = twilio_accepts(url, pairs, signature)
    assert SignatureValidator(TOKEN).is_valid(url, Params.from_pairs(list(pairs)), signature) is expected


@given(url=urls(), pairs=pairs_lists)
@example(url="https://mycompany.com/myapp.php?foo=1&bar=2", pairs=[])
def test_signature_with_the_default_port_added_or_removed_is_accepted(
    url: str, pairs: list[tuple[str, str]]
) -> None:
    for signed_for in (url.replace(".com/", ".com:443/", 1), url):
        signature = RequestValidator(TOKEN).compute_signature(signed_for, Params(pairs))
        expected = twilio_accepts(url, pairs, signature)
        assert SignatureValidator(TOKEN).is_valid(url, Params.from_pairs(list(pairs)), signature) is expected


def test_twilio_published_vectors() -> None:
    params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
    validator = SignatureValidator(TOKEN)
    https_url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    http_url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2"

    assert validator.is_valid(https_url, Params.from_pairs(params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")
    assert validator.is_valid(http_url, Params.from_pairs(params), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=")
    assert not validator.is_valid(https_url, Params.from_pairs(params[:-1]), "RSOYDt4T1cUTdK1PDd93/VVr8B8=")


def test_unparseable_url_is_refused_not_raised() -> None:
    assert not SignatureValidator(TOKEN).is_valid("http://example.com:notaport/", Params(), "x")


@settings(max_examples=200)
@given(url=urls(), pairs=pairs_lists, tamper=st.booleans())
def test_same_verdict_as_request_validator_for_hmac_sha256(
    url: str, pairs: list[tuple[str, str]], tamper: bool
) -> None:
    signature = RequestValidator(TOKEN).compute_signature(url, Params(pairs), algorithm=HMAC_SHA256)
    if tamper:
        signature = signature[:-2] + "A="

    expected = twilio_accepts(url, pairs, signature, HMAC_SHA256)
    validator = SignatureValidator(TOKEN, algorithm=HMAC_SHA256)
    assert validator.is_valid(url, Params.from_pairs(list(pairs)), signature) is expected


@given(url=urls(), pairs=pairs_lists)
def test_with_several_keys_each_key_signs_as_it_would_alone(url: str, pairs: list[tuple[str, str]]) -> None:
    keys = ("first", TOKEN, "third")
    validator = SignatureValidator(*keys)
    for index, key in enumerate(keys):
        signature = RequestValidator(key).compute_signature(url, Params(pairs))
        expected = index if twilio_accepts(url, pairs, signature, key=key) else None
        assert validator.match(url, Params.from_pairs(list(pairs)), signature) == expected

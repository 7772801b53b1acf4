"""Reading the body within a limit, checking it is a form, and parsing it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from twilio_events.events import Params
from twilio_events.http.forms import parse_form, parse_pairs
from twilio_events.http.request import (
    ClientDisconnected,
    Rejected,
    check_content_type,
    check_no_upgrade,
    read_body,
)

from .conftest import FORM


def scope_with(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "headers": [
            (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()
        ],
    }


class Receiver:
    """An ASGI `receive` that hands out the given messages and counts how many were taken."""

    def __init__(self, messages: Iterable[dict[str, Any]]) -> None:
        self.messages = list(messages)
        self.taken = 0

    async def __call__(self) -> dict[str, Any]:
        if self.taken >= len(self.messages):
            raise AssertionError("the body was read past its last message")
        message = self.messages[self.taken]
        self.taken += 1
        return message


def body_messages(*chunks: bytes) -> list[dict[str, Any]]:
    return [
        {"type": "http.request", "body": chunk, "more_body": index < len(chunks) - 1}
        for index, chunk in enumerate(chunks)
    ]


def read(headers: dict[str, str], receiver: Receiver, limit: int) -> bytes:
    return asyncio.run(read_body(scope_with(headers), receiver, limit))


# --- Content-Type --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "Application/X-WWW-Form-URLEncoded",
        "  application/x-www-form-urlencoded ;charset=UTF-8",
        'application/x-www-form-urlencoded; charset="utf-8"',
        "application/x-www-form-urlencoded; charset=utf8",
        "application/x-www-form-urlencoded; charset=US-ASCII",
        "application/x-www-form-urlencoded; format=x",
    ],
)
def test_form_content_types_are_accepted(content_type: str) -> None:
    check_content_type(scope_with({"Content-Type": content_type}))


@pytest.mark.parametrize(
    ("headers", "shown"),
    [
        ({"Content-Type": "application/json"}, "got application/json"),
        (
            {"Content-Type": "application/x-www-form-urlencoded-extra"},
            "got application/x-www-form-urlencoded-extra",
        ),
        ({"Content-Type": "multipart/form-data; boundary=x"}, "got multipart/form-data; boundary=x"),
        ({"Content-Type": ""}, "got no Content-Type"),
        ({}, "got no Content-Type"),
    ],
)
def test_other_content_types_are_415(headers: dict[str, str], shown: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_content_type(scope_with(headers))

    assert refused.value.status_code == 415
    assert refused.value.message.startswith(
        "Unsupported Media Type: expected application/x-www-form-urlencoded"
    )
    assert refused.value.message.endswith(shown)


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", "windows-1252", "utf-16", ""])
def test_a_charset_other_than_utf_8_is_415(charset: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_content_type(scope_with({"Content-Type": f"{FORM}; charset={charset}"}))

    assert refused.value.status_code == 415
    assert refused.value.message == (
        f"Unsupported Media Type: only UTF-8 forms are accepted, as Twilio sends them; got charset={charset}"
    )


@pytest.mark.parametrize(
    ("connection", "upgrade"),
    [("Upgrade, HTTP2-Settings", "h2c"), ("upgrade", "websocket"), ("keep-alive, Upgrade", "TLS/1.2")],
)
def test_a_request_to_switch_protocols_is_400_and_closes(connection: str, upgrade: str) -> None:
    with pytest.raises(Rejected) as refused:
        check_no_upgrade(scope_with({"Connection": connection, "Upgrade": upgrade}))

    assert refused.value.status_code == 400
    assert f"does not switch protocols (Upgrade: {upgrade})" in refused.value.message
    assert refused.value.headers == {"Connection": "close"}


@pytest.mark.parametrize(
    "headers", [{"Upgrade": "h2c"}, {"Connection": "upgrade"}, {"Connection": "keep-alive"}, {}]
)
def test_no_upgrade_without_both_headers(headers: dict[str, str]) -> None:
    check_no_upgrade(scope_with(headers))


# --- reading the body -----------------------------------------------------------------------------------


def test_the_body_is_joined_from_its_chunks() -> None:
    receiver = Receiver(body_messages(b"a=1", b"&b=", b"2"))

    assert read({}, receiver, 100) == b"a=1&b=2"
    assert receiver.taken == 3


def test_an_empty_body_is_empty() -> None:
    assert read({"Content-Length": "0"}, Receiver(body_messages(b"")), 100) == b""


def test_a_body_of_exactly_the_limit_is_read() -> None:
    assert read({"Content-Length": "10"}, Receiver(body_messages(b"12345", b"67890")), 10) == b"1234567890"


def test_a_declared_length_over_the_limit_is_413_before_reading() -> None:
    receiver = Receiver(body_messages(b"x" * 11))

    with pytest.raises(Rejected) as refused:
        read({"Content-Length": "11"}, receiver, 10)

    assert refused.value.status_code == 413
    assert refused.value.message == "Payload Too Large: the body exceeds the 10-byte limit (max_body_size)"
    assert receiver.taken == 0


def test_a_streamed_body_over_the_limit_is_413_and_reading_stops() -> None:
    receiver = Receiver(body_messages(b"x" * 6, b"x" * 6, b"x" * 6, b"x" * 6))

    with pytest.raises(Rejected) as refused:
        read({}, receiver, 10)

    assert refused.value.status_code == 413
    assert receiver.taken == 2


def test_a_body_longer_than_its_declared_length_is_still_limited() -> None:
    with pytest.raises(Rejected) as refused:
        read({"Content-Length": "5"}, Receiver(body_messages(b"x" * 20)), 10)

    assert refused.value.status_code == 413


@pytest.mark.parametrize("declared", ["abc", "-1", "1e3", " 5", ""])
def test_an_invalid_content_length_is_400(declared: str) -> None:
    with pytest.raises(Rejected) as refused:
        read({"Content-Length": declared}, Receiver(body_messages(b"a=1")), 100)

    assert refused.value.status_code == 400
    assert "invalid Content-Length" in refused.value.message


def test_a_body_that_does_not_arrive_in_time_is_408_and_closes() -> None:
    async def stalled() -> dict[str, Any]:
        await asyncio.sleep(60)
        raise AssertionError("not cancelled")

    async def read_stalled() -> bytes:
        return await read_body(scope_with({}), stalled, 100, timeout=0.05)

    with pytest.raises(Rejected) as refused:
        asyncio.run(read_stalled())

    assert refused.value.status_code == 408
    assert refused.value.message == "Request Timeout: the body did not arrive within 0.05 s (read_timeout)"
    assert refused.value.headers == {"Connection": "close"}


def test_a_disconnect_while_reading_is_reported() -> None:
    receiver = Receiver(
        [{"type": "http.request", "body": b"a=", "more_body": True}, {"type": "http.disconnect"}]
    )

    with pytest.raises(ClientDisconnected):
        read({}, receiver, 100)


# --- parsing the form -----------------------------------------------------------------------------------


def test_parse_form_keeps_order_repeats_and_blanks() -> None:
    params = parse_form(b"b=2&a=1&b=3&empty=&plus=a+b&pct=%2B1%20%26%3D")

    assert isinstance(params, Params)
    assert params.multi_items() == [
        ("b", "2"),
        ("a", "1"),
        ("b", "3"),
        ("empty", ""),
        ("plus", "a b"),
        ("pct", "+1 &="),
    ]
    assert params["b"] == "2"
    assert params.getlist("b") == ["2", "3"]


def test_parse_form_decodes_utf_8() -> None:
    assert parse_form("Body=Héllo 👋".encode())["Body"] == "Héllo 👋"
    assert parse_form(b"Body=H%C3%A9llo+%F0%9F%91%8B")["Body"] == "Héllo 👋"


def test_an_empty_body_is_an_empty_form() -> None:
    assert len(parse_form(b"")) == 0


@pytest.mark.parametrize(
    "body",
    [b"a=1&&b=2", b"a=1&", b"justaname", b"a=1&b"],
)
def test_a_malformed_form_is_400(body: bytes) -> None:
    with pytest.raises(Rejected) as refused:
        parse_form(body)

    assert refused.value.status_code == 400
    assert refused.value.message.startswith("Bad Request: malformed form body (")
    assert refused.value.__cause__ is None


@pytest.mark.parametrize("body", [b"Body=\xe9t\xe9", b"Body=%E9t%E9", b"\xff"])
def test_a_form_not_in_utf_8_is_400_saying_so(body: bytes) -> None:
    with pytest.raises(Rejected) as refused:
        parse_form(body)

    assert refused.value.status_code == 400
    assert refused.value.message.startswith(
        "Bad Request: malformed form body: only UTF-8 is accepted, as Twilio sends it ("
    )
    assert refused.value.__cause__ is None


@given(
    st.lists(
        st.tuples(
            st.text(min_size=1, max_size=20),
            st.text(max_size=40),
        ),
        max_size=8,
    )
)
def test_any_form_encoded_pairs_parse_back(pairs: list[tuple[str, str]]) -> None:
    assert parse_form(urlencode(pairs).encode()).multi_items() == pairs


def test_rejected_carries_status_message_and_headers() -> None:
    rejected = Rejected(405, "Method Not Allowed", {"Allow": "POST"})

    assert (rejected.status_code, rejected.message, rejected.headers) == (
        405,
        "Method Not Allowed",
        {"Allow": "POST"},
    )
    assert str(rejected) == "Method Not Allowed"
    assert Rejected(400, "x").headers is None


form_text = st.one_of(
    st.text(alphabet="ab=&+%2B3C6A9éZ ", max_size=30),  # dense in separators and escapes
    st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=6).map(urlencode),
)


@given(form_text)
@example("x=%26&y=%3D%25")
@example("a=%C3&b=%A9")
def test_parse_pairs_agrees_with_parse_qsl(text: str) -> None:
    """The fast parser gives what strict parse_qsl gives, and fails where it fails."""
    try:
        expected: object = parse_qsl(text, keep_blank_values=True, strict_parsing=True, errors="strict")
    except (UnicodeDecodeError, ValueError) as exc:
        expected = type(exc)
    try:
        actual: object = parse_pairs(text)
    except (UnicodeDecodeError, ValueError) as exc:
        actual = type(exc)
    assert actual == expected

"""Properties of the HTTP edge: whatever arrives, the app answers with one of its documented statuses.

Requests are built by hypothesis (any method, path, headers, body, chunking, form parameters and status
strings, validly signed or not) and given straight to the ASGI app, in process, for speed. The handlers
never raise, and the store is in memory, so neither 500 nor 503 may ever be the answer, and no exception
may escape the app.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote, urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twilio.twiml.messaging_response import MessagingResponse

from twilio_events import CallEvent, CallStatus, SmsEvent, SmsStatus, TwilioEvents
from twilio_events.testing import TEST_ACCOUNT_SID, sign

from .conftest import FORM, TOKEN

ANSWERS = {200, 400, 403, 404, 405, 413, 415}
"""What the app may answer when no handler raises and the store is always there."""

HOST = "testserver"


def with_handlers(app: TwilioEvents) -> TwilioEvents:
    """`app` with handlers for every status that never raise: some return TwiML, most nothing."""

    @app.call.on_any
    async def call(event: CallEvent) -> None:
        return None

    @app.sms.on_any
    def sms(event: SmsEvent) -> None:
        return None

    @app.sms.on_received
    def reply(event: SmsEvent) -> MessagingResponse:
        response = MessagingResponse()
        response.message(f"echo {event.body!s:.20}")
        return response

    @app.call.on_completed
    async def completed(event: CallEvent) -> str:
        return '<?xml version="1.0" encoding="UTF-8"?><Response/>'

    return app


APPS = [
    with_handlers(TwilioEvents(auth_token=TOKEN, max_body_size=1024)),
    with_handlers(
        TwilioEvents(
            validate_signature=False, account_sid=TEST_ACCOUNT_SID, ordering="monotonic", path="/hooks/"
        )
    ),
]
"""A small body limit and signatures checked; signatures not checked, an account, ordering, a path."""
DEFAULT_LIMITS = with_handlers(TwilioEvents(auth_token=TOKEN))
"""The default body limit (64 KiB), which no form of the second property reaches."""

# Strategies

texts = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=30)
header_texts = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF), max_size=40)
statuses = st.one_of(st.sampled_from([*CallStatus, *SmsStatus]).map(str), texts)
numbers = st.one_of(st.integers().map(str), st.floats().map(str), texts)
timestamps = st.one_of(
    st.builds(
        "{}, {} {} {} {}:{}:{} {}".format,
        st.sampled_from(["Fri", "Mon", "x"]),
        st.integers(),
        st.sampled_from(["Jan", "Feb", "Dec", "Foo"]),
        st.integers(),
        st.integers(),
        st.integers(),
        st.integers(),
        st.sampled_from(["+0000", "-0000", "+9999", "GMT", "Z"]),
    ),
    texts,
)
FIELDS: dict[str, st.SearchStrategy[str]] = {
    "CallStatus": statuses,
    "MessageStatus": statuses,
    "SmsStatus": statuses,
    "CallSid": st.sampled_from(["CA1", "CA2", ""]),
    "MessageSid": st.sampled_from(["SM1", "SM2", ""]),
    "SmsSid": st.sampled_from(["SM1", "SM3"]),
    "AccountSid": st.sampled_from([TEST_ACCOUNT_SID, "AC1", ""]),
    "SequenceNumber": numbers,
    "CallDuration": numbers,
    "SipResponseCode": numbers,
    "ErrorCode": numbers,
    "NumMedia": numbers,
    "Latitude": numbers,
    "Forwarded": st.sampled_from(["true", "false", "yes", ""]),
    "Timestamp": timestamps,
    "RawDlrDoneDate": st.one_of(st.integers().map(str), texts),
    "MediaUrl0": texts,
    "Body": texts,
}
known_pair = st.sampled_from(sorted(FIELDS)).flatmap(lambda name: st.tuples(st.just(name), FIELDS[name]))
pairs = st.lists(st.one_of(known_pair, known_pair, st.tuples(texts, texts)), max_size=12)


def often(value: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`value` three times in four, else anything `other` draws: deep into the app, and anywhere."""
    return st.one_of(st.just(value), st.just(value), st.just(value), other)


@st.composite
def requests(draw: st.DrawFn) -> tuple[TwilioEvents, dict[str, Any], list[bytes]]:
    """An app, an ASGI HTTP scope and the chunks of its body."""
    app = draw(st.sampled_from(APPS))
    method = draw(often("POST", st.sampled_from(["GET", "HEAD", "PUT", "OPTIONS", "post"])))
    path = draw(often(app.path, st.one_of(st.sampled_from(["/health", "/hooks/health", "/"]), texts)))
    query = draw(often(b"", st.binary(max_size=16)))
    form = draw(pairs)
    if app.account_sid and draw(st.booleans()):
        form.insert(0, ("AccountSid", app.account_sid))
    body = draw(often(urlencode(form).encode("ascii"), st.binary(max_size=1500)))
    raw_path = quote(path, safe="/:@!$&'()*+,;=").encode("ascii")
    url = f"http://{HOST}{raw_path.decode('ascii')}" + (f"?{query.decode('latin-1')}" if query else "")

    headers: list[tuple[bytes, bytes]] = [(b"host", HOST.encode())]
    content_type = draw(often(FORM, st.one_of(st.none(), st.just(FORM + "; charset=utf-8"), header_texts)))
    if content_type is not None:
        headers.append((b"content-type", content_type.encode("latin-1")))
    digits = st.text(alphabet="0123456789\xb2\xb3\xb9 +-", min_size=1, max_size=8)
    length = draw(
        often(str(len(body)), st.one_of(st.none(), st.integers(0, 10**7).map(str), digits, header_texts))
    )
    if length is not None:
        headers.append((b"content-length", length.encode("latin-1")))
    signature = draw(often(sign(url, form, TOKEN), st.one_of(st.none(), header_texts)))
    if signature is not None:
        headers.append((b"x-twilio-signature", signature.encode("latin-1")))
    token = draw(st.one_of(st.none(), header_texts))
    if token is not None:
        headers.append((b"i-twilio-idempotency-token", token.encode("latin-1")))
    headers += draw(st.lists(st.tuples(header_texts, header_texts), max_size=3).map(_encoded))

    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=3)))
    chunks = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    return app, scope, chunks


def _encoded(pairs: list[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs]


async def call(app: TwilioEvents, scope: dict[str, Any], chunks: list[bytes]) -> list[dict[str, Any]]:
    """Give the app one request as a server would; what it sent back."""
    incoming = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if incoming:
            return incoming.pop(0)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asyncio.wait_for(app(scope, receive, send), 10)
    return sent


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(requests())
def test_every_request_gets_one_documented_answer(
    request: tuple[TwilioEvents, dict[str, Any], list[bytes]],
) -> None:
    app, scope, chunks = request

    sent = asyncio.run(call(app, scope, chunks))

    starts = [message for message in sent if message["type"] == "http.response.start"]
    assert len(starts) == 1, sent
    assert starts[0]["status"] in ANSWERS, sent
    bodies = [message for message in sent if message["type"] == "http.response.body"]
    assert bodies and not bodies[-1].get("more_body", False)
    assert sent[0] is starts[0]


@settings(max_examples=150, deadline=None)
@given(st.lists(known_pair, max_size=12), st.sampled_from(["call", "sms", "inbound"]), statuses)
def test_any_signed_callback_with_a_status_is_acknowledged(
    form: list[tuple[str, str]], kind: str, status: str
) -> None:
    """A validly signed form that names its status is a callback: 200, whatever else it holds."""
    app = DEFAULT_LIMITS
    field = {"call": "CallStatus", "sms": "MessageStatus", "inbound": "SmsStatus"}[kind]
    form = [(name, value) for name, value in form if name not in ("CallStatus", "MessageStatus", "SmsStatus")]
    form.insert(0, (field, status or "x"))
    body = urlencode(form).encode("ascii")
    headers = [
        (b"host", HOST.encode()),
        (b"content-type", FORM.encode()),
        (b"x-twilio-signature", sign(f"http://{HOST}/", form, TOKEN).encode()),
    ]
    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "headers": headers,
    }

    sent = asyncio.run(call(app, scope, [body]))

    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 200, sent

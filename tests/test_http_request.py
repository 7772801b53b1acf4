"""What the HTTP edge refuses before parsing a form, on real servers: a request that asks to switch
protocols (h2c), a form declared in a charset other than UTF-8, and a body that does not arrive."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

import pytest

from twilio_events import CallEvent, CallStatus, TwilioEvents
from twilio_events.testing import call_payload

from .conftest import FORM, TOKEN, LiveServer
from .raw_http import connect, exchange, read_response, seconds_until_closed, signed_callback

H2C = {
    "Connection": "Upgrade, HTTP2-Settings",
    "Upgrade": "h2c",
    "HTTP2-Settings": "AAMAAABkAARAAAAAAAIAAAAA",
}


def recording_app() -> tuple[TwilioEvents, list[CallEvent]]:
    app = TwilioEvents(auth_token=TOKEN)
    handled: list[CallEvent] = []

    @app.call.on_any
    def record(event: CallEvent) -> None:
        handled.append(event)

    return app, handled


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_an_h2c_upgrade_is_refused_for_what_it_is(serve: Callable[..., LiveServer], parser: str) -> None:
    app, handled = recording_app()
    live = serve(app, http=parser)
    payload = call_payload(CallStatus.RINGING)

    with connect(live.port) as sock:
        sock.sendall(signed_callback(live.port, payload.items(), headers=H2C))
        answer = read_response(sock)
        seconds_until_closed(sock, 0.0)  # and the connection is not kept

    assert answer.status == 400
    assert answer.text == (
        "Bad Request: this service does not switch protocols (Upgrade: h2c); send the callback as plain "
        "HTTP/1.1, without Upgrade and HTTP2-Settings (curl: --http1.1)\n"
    )
    assert handled == []
    assert exchange(live.port, signed_callback(live.port, payload.items())).status == 200


def test_an_upgrade_header_without_connection_upgrade_is_no_upgrade(serve: Callable[..., LiveServer]) -> None:
    app, handled = recording_app()
    live = serve(app)

    answer = exchange(
        live.port,
        signed_callback(live.port, call_payload(CallStatus.RINGING).items(), headers={"Upgrade": "h2c"}),
    )

    assert answer.status == 200
    assert len(handled) == 1


@pytest.mark.parametrize("charset", ["latin-1", "ISO-8859-1", '"windows-1252"'])
def test_a_form_in_another_charset_is_refused_saying_only_utf8(
    serve: Callable[..., LiveServer], charset: str
) -> None:
    app, handled = recording_app()
    live = serve(app)
    payload = call_payload(CallStatus.RINGING, CallerName="Zoë Müller")  # signed over the characters
    body = urlencode(list(payload.items()), encoding="latin-1").encode("ascii")

    answer = exchange(
        live.port,
        signed_callback(
            live.port, payload.items(), headers={"Content-Type": f"{FORM}; charset={charset}"}, body=body
        ),
    )

    assert answer.status == 415
    assert answer.text == (
        "Unsupported Media Type: only UTF-8 forms are accepted, as Twilio sends them; "
        f"got charset={charset.strip(chr(34))}\n"
    )
    assert handled == []


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8", '"utf-8"', "utf8", "us-ascii"])
def test_utf8_declared_in_any_spelling_is_accepted(serve: Callable[..., LiveServer], charset: str) -> None:
    app, handled = recording_app()
    live = serve(app)
    payload = call_payload(CallStatus.RINGING, CallerName="Zoe Muller")

    answer = exchange(
        live.port,
        signed_callback(live.port, payload.items(), headers={"Content-Type": f"{FORM}; charset={charset}"}),
    )

    assert answer.status == 200
    assert [event.caller_name for event in handled] == ["Zoe Muller"]


def test_undeclared_latin1_is_a_400_saying_only_utf8(serve: Callable[..., LiveServer]) -> None:
    app, handled = recording_app()
    live = serve(app)
    payload = call_payload(CallStatus.RINGING, CallerName="Zoë")
    body = urlencode(list(payload.items()), encoding="latin-1").encode("ascii")

    answer = exchange(live.port, signed_callback(live.port, payload.items(), body=body))

    assert answer.status == 400
    assert answer.text.startswith(
        "Bad Request: malformed form body: only UTF-8 is accepted, as Twilio sends it"
    )
    assert handled == []


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_a_stalled_body_gets_408_under_plain_uvicorn(serve: Callable[..., LiveServer], parser: str) -> None:
    app = TwilioEvents(auth_token=TOKEN, read_timeout=1)
    live = serve(app, http=parser)  # uvicorn's own protocol: no read deadline of its own
    payload = call_payload(CallStatus.RINGING).items()
    whole = signed_callback(live.port, payload)

    with connect(live.port) as sock:
        sock.sendall(whole[:-10])  # all but the last 10 bytes of the body, then silence
        started = time.monotonic()
        answer = read_response(sock)
        assert seconds_until_closed(sock, started) <= 1 + 2

    assert answer.status == 408
    assert answer.text == "Request Timeout: the body did not arrive within 1 s (read_timeout)\n"

"""What a handler's return value, or a refusal, becomes on the wire."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse, Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from twilio_events.http.responses import EMPTY_TWIML, acknowledge, handler_response, refuse


def test_acknowledge_is_empty_twiml() -> None:
    response = acknowledge()

    assert response.status_code == 200
    assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert bytes(response.body).decode() == EMPTY_TWIML


def test_none_is_acknowledged() -> None:
    assert handler_response(None).body == acknowledge().body


def test_twiml_objects_are_rendered_as_text_xml() -> None:
    messaging = MessagingResponse()
    messaging.message("Hi & bye")
    voice = VoiceResponse()
    voice.say("Hello")

    for twiml in (messaging, voice):
        response = handler_response(twiml)
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/xml; charset=utf-8"
        assert bytes(response.body).decode() == twiml.to_xml()
    assert b"<Message>Hi &amp; bye</Message>" in handler_response(messaging).body


@pytest.mark.parametrize("body", ["<Response><Say>hi</Say></Response>", b"<Response/>"])
def test_strings_and_bytes_are_sent_as_text_xml(body: str | bytes) -> None:
    response = handler_response(body)

    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.body == (body if isinstance(body, bytes) else body.encode())


def test_a_starlette_response_is_returned_as_is() -> None:
    original = JSONResponse({"ok": True}, status_code=202)

    assert handler_response(original) is original
    bare = Response(status_code=204)
    assert handler_response(bare) is bare


def test_a_twiml_element_that_is_not_a_response_is_refused() -> None:
    reply = MessagingResponse()
    message = reply.message("only the element")

    with pytest.raises(TypeError, match="return the whole"):
        handler_response(message)


@pytest.mark.parametrize("result", [42, {"a": 1}, ["<Response/>"], object()])
def test_anything_else_is_a_type_error_that_says_what_to_return(result: object) -> None:
    with pytest.raises(TypeError, match="return None, TwiML") as raised:
        handler_response(result)

    assert type(result).__name__ in str(raised.value)


def test_refuse_is_a_one_line_plain_text_message() -> None:
    response = refuse(405, "Method Not Allowed: use POST", {"Allow": "POST"})

    assert response.status_code == 405
    assert response.body == b"Method Not Allowed: use POST\n"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["allow"] == "POST"

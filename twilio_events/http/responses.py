"""What a handler's return value, or a refused request, becomes on the wire."""

from __future__ import annotations

from typing import Any

from starlette.responses import PlainTextResponse, Response
from twilio.twiml import TwiML

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
TWIML_MEDIA_TYPE = "text/xml"


def acknowledge() -> Response:
    """200 with an empty TwiML document: valid for status callbacks and incoming webhooks alike."""
    return _ACKNOWLEDGEMENT


_ACKNOWLEDGEMENT = Response(EMPTY_TWIML, media_type=TWIML_MEDIA_TYPE)  # immutable once built: shared


def handler_response(result: Any) -> Response:
    """Turn a handler's return value into the response Twilio gets."""
    if result is None:
        return acknowledge()
    if isinstance(result, Response):
        return result
    if isinstance(result, TwiML):
        if result.name != "Response":
            raise TypeError(
                f"a handler returned a <{result.name}> TwiML element; return the whole "
                "MessagingResponse / VoiceResponse it belongs to"
            )
        return Response(result.to_xml(), media_type=TWIML_MEDIA_TYPE)
    if isinstance(result, (str, bytes)):
        return Response(result, media_type=TWIML_MEDIA_TYPE)
    raise TypeError(
        f"a handler returned {type(result).__name__}; return None, TwiML (MessagingResponse, "
        "VoiceResponse or a TwiML string) or a starlette Response"
    )


def refuse(status_code: int, message: str, headers: dict[str, str] | None = None) -> Response:
    """An error answer with a one-line message a person can act on (never a traceback)."""
    return PlainTextResponse(message + "\n", status_code=status_code, headers=headers)

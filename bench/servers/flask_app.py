"""Row 3: the Flask recipe from Twilio's docs (a decorator around twilio's RequestValidator),
served by gunicorn with one sync worker."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, Response, abort, request
from twilio.request_validator import RequestValidator

from ..payload import AUTH_TOKEN, EMPTY_TWIML

app = Flask(__name__)
validator = RequestValidator(AUTH_TOKEN)


def validate_twilio_request(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (403) any request whose X-Twilio-Signature does not match its URL and form."""

    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(request.url, request.form, signature):
            abort(403)
        return view(*args, **kwargs)

    return checked


def call_completed(form: Any) -> None:
    return None


def call_failed(form: Any) -> None:
    return None


HANDLERS: dict[str, Callable[[Any], None]] = {"completed": call_completed, "failed": call_failed}


@app.post("/")
@validate_twilio_request
def status_callback() -> Response:
    handler = HANDLERS.get(request.form.get("CallStatus", ""))
    if handler is not None:
        handler(request.form)
    return Response(EMPTY_TWIML, mimetype="text/xml")

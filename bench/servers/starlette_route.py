"""Row 2: what a user writes without twilio_events: a Starlette route, `request.form()` and
twilio's RequestValidator, then a handler looked up by CallStatus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator

from ..payload import AUTH_TOKEN, EMPTY_TWIML
from .common import run_uvicorn

validator = RequestValidator(AUTH_TOKEN)


async def call_completed(form: Any) -> None:
    return None


async def call_failed(form: Any) -> None:
    return None


HANDLERS: dict[str, Callable[[Any], Awaitable[None]]] = {
    "completed": call_completed,
    "failed": call_failed,
}


async def status_callback(request: Request) -> Response:
    form = await request.form()
    signature = request.headers.get("X-Twilio-Signature", "")
    if not validator.validate(str(request.url), form, signature):
        return PlainTextResponse("invalid signature", status_code=403)
    handler = HANDLERS.get(str(form.get("CallStatus", "")))
    if handler is not None:
        await handler(form)
    return Response(EMPTY_TWIML, media_type="text/xml")


app = Starlette(routes=[Route("/", status_callback, methods=["POST"])])


if __name__ == "__main__":
    run_uvicorn(app)

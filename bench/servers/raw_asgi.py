"""Row 1, the floor: a bare ASGI app that reads the whole body and answers 200 (no validation)."""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from ..payload import EMPTY_TWIML
from .common import run_uvicorn

HEADERS = [(b"content-type", b"text/xml"), (b"content-length", str(len(EMPTY_TWIML)).encode())]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})
        return
    more_body = True
    while more_body:
        message = await receive()
        more_body = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": EMPTY_TWIML})


if __name__ == "__main__":
    run_uvicorn(app)

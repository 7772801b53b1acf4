"""A WebSocket handshake on the app's routes: answered with what a plain GET there gets.

Twilio's callbacks are HTTP POSTs, so a handshake is a GET the app does not serve: 405 with `Allow:
POST` on the webhook path, the health check on the health path, 404 elsewhere. The HTTP endpoint
answers it as such, and the answer goes back through the ASGI `websocket.http.response` extension
(uvicorn and most servers have it); a server without the extension can only be told to refuse the
handshake, which it does with an empty 403.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_RESPONSE_EXTENSION = "websocket.http.response"

_SCHEMES = {"ws": "http", "wss": "https"}


async def answer_handshake(endpoint: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a `websocket` scope with the HTTP response `endpoint` gives the same request as a GET."""
    if HTTP_RESPONSE_EXTENSION not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1000})
        return
    if (await receive())["type"] != "websocket.connect":
        return  # the client left before the handshake was read
    scheme = str(scope.get("scheme", "ws"))
    http_scope = {**scope, "type": "http", "method": "GET", "scheme": _SCHEMES.get(scheme, scheme)}
    body_sent = False

    async def no_body() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await receive()  # only a disconnect can come now
        return {"type": "http.disconnect"}

    async def as_websocket_response(message: Message) -> None:
        if message["type"] in ("http.response.start", "http.response.body"):
            await send({**message, "type": "websocket." + message["type"]})

    await endpoint(http_scope, no_body, as_websocket_response)

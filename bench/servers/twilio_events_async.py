"""Row 4: twilio_events, inline delivery, signatures validated, an async no-op handler."""

from __future__ import annotations

from typing import Any

from twilio_events import CallEvent, Listener, TwilioEvents

from ..payload import AUTH_TOKEN, HOST
from .common import port_from_argv


def create_app(port: int, **options: Any) -> TwilioEvents:
    """The app of row 4; `options` (delivery=, store=) make rows 6a and 6b from it."""
    app = TwilioEvents(
        auth_token=AUTH_TOKEN,
        validate_signature=True,
        listeners=[Listener(host=HOST, port=port, name="bench")],
        **options,
    )

    @app.call.on_completed
    async def completed(event: CallEvent) -> None:
        return None

    @app.call.on_failed
    async def failed(event: CallEvent) -> None:
        return None

    return app


if __name__ == "__main__":
    create_app(port_from_argv()).run(log_level="warning")

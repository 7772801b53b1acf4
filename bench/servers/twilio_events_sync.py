"""Row 5: twilio_events as in row 4, with a sync no-op handler (run off the event loop)."""

from __future__ import annotations

from twilio_events import CallEvent, Listener, TwilioEvents

from ..payload import AUTH_TOKEN, HOST
from .common import port_from_argv


def create_app(port: int) -> TwilioEvents:
    app = TwilioEvents(
        auth_token=AUTH_TOKEN,
        validate_signature=True,
        listeners=[Listener(host=HOST, port=port, name="bench")],
    )

    @app.call.on_completed
    def completed(event: CallEvent) -> None:
        return None

    @app.call.on_failed
    def failed(event: CallEvent) -> None:
        return None

    return app


if __name__ == "__main__":
    create_app(port_from_argv()).run(log_level="warning")

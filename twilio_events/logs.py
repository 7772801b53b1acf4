"""What the app says about itself in the log: that it is ready, and loudly when signatures are off."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .observability.logging import formatter, library_level

logger = logging.getLogger("twilio_events")


def ensure_log_output() -> None:
    """Show this package's lines when nothing configured logging (plain `uvicorn module:app`), at uvicorn's
    `--log-level` (or TWILIO_EVENTS_LOG_LEVEL); JSON lines with TWILIO_EVENTS_LOG_FORMAT=json."""
    if logger.handlers or logging.getLogger().handlers or logger.level != logging.NOTSET:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter("%(levelname)s:     %(name)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(library_level())


def warn_validation_off() -> None:
    """The warning an app without signature validation gives when it is created and when it starts."""
    logger.warning(
        "X-Twilio-Signature validation is OFF: anyone who can reach this service can fake Twilio "
        "callbacks. Use this only for local development."
    )


def log_ready(route: str, channels: Mapping[str, Any], *, validated: bool, durable_store: object) -> None:
    """The start-up lines: where callbacks are received, how many handlers each channel has, the store."""
    ensure_log_output()
    counts = f"{len(channels['call'].handlers)} call and {len(channels['sms'].handlers)} message handlers"
    others = [
        f"{len(channel.handlers)} {name}"
        for name, channel in channels.items()
        if name not in ("call", "sms") and channel.handlers
    ]
    if others:
        counts += f" (and {', '.join(others)})"
    if durable_store is not None:
        logger.info("durable delivery: events are stored in %s before they are acknowledged", durable_store)
    if validated:
        logger.info("twilio_events ready at %s with %s; signatures validated", route, counts)
    else:
        warn_validation_off()
        logger.info("twilio_events ready at %s with %s", route, counts)

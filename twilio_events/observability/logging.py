"""Log output: one JSON object per line (TWILIO_EVENTS_LOG_FORMAT=json), and the level that applies."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

LOG_FORMAT_ENV = "TWILIO_EVENTS_LOG_FORMAT"
LOG_LEVEL_ENV = "TWILIO_EVENTS_LOG_LEVEL"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FIELDS_ATTRIBUTE = "twilio_events"
"""The LogRecord attribute (set with `extra=`) that holds a callback's fields."""
CALLBACK_KEYS = ("listener", "channel", "status", "sid", "handler", "duration_ms", "outcome")
"""The keys every JSON line carries after time, level, logger and message (null when they do not apply)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per record, always with the same keys; `exception` added when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, FIELDS_ATTRIBUTE, None) or {}
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CALLBACK_KEYS:
            line[key] = fields.get(key)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def callback_fields(
    listener: str,
    channel: str,
    status: str,
    sid: str,
    outcome: str,
    handler: str | None = None,
    duration: float | None = None,
) -> dict[str, Any]:
    """The `extra=` of a log line about one callback: its fields for the JSON lines."""
    duration_ms = round(duration * 1000, 3) if duration is not None else None
    fields = {
        "listener": listener,
        "channel": channel,
        "status": status,
        "sid": sid or None,
        "handler": handler,
        "duration_ms": duration_ms,
        "outcome": outcome,
    }
    return {FIELDS_ATTRIBUTE: fields}


def json_logs() -> bool:
    """True when TWILIO_EVENTS_LOG_FORMAT asks for JSON lines."""
    value = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if value not in ("", "text", "json"):
        raise ValueError(f"{LOG_FORMAT_ENV}={value!r}: choose text or json")
    return value == "json"


def formatter(text_format: str = TEXT_FORMAT) -> logging.Formatter:
    """The JSON formatter when asked for, else `text_format`."""
    return JsonFormatter() if json_logs() else logging.Formatter(text_format)


def configure_root(level: str, text_format: str = TEXT_FORMAT) -> None:
    """What `app.run()` and `twilio-events run` install when nothing configured logging: one handler on
    the root logger, JSON lines or `text_format`, at `level`."""
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(text_format))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def library_level() -> int:
    """The level of the library's own output under a server that configured only its own loggers:
    TWILIO_EVENTS_LOG_LEVEL when set, else uvicorn's (its `--log-level` sets "uvicorn.error"), else INFO."""
    named = os.environ.get(LOG_LEVEL_ENV, "").strip().upper()
    if named:
        level = logging.getLevelName(named)
        if isinstance(level, int):
            return level
    if logging.getLogger("uvicorn").handlers:  # uvicorn's own logging configuration is in place
        return logging.getLogger("uvicorn.error").getEffectiveLevel()
    return logging.INFO

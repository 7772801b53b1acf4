"""Settings read from the constructor's arguments and the environment, and the error for bad ones."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from .listener import Listener
from .stores import MemoryStore, Store, StoreUnavailable, open_store

DEFAULT_STORE = "sqlite:///twilio_events.db"
"""The durable store when none is given: a file in the working directory."""

VALIDATE_SIGNATURE_ENV = "TWILIO_EVENTS_VALIDATE_SIGNATURE"
PORT_ENV = "TWILIO_EVENTS_PORT"
STORE_ENV = "TWILIO_EVENTS_STORE"
DELIVERY_ENV = "TWILIO_EVENTS_DELIVERY"
CONSOLE_ENV = "TWILIO_EVENTS_CONSOLE"
NO_TOKEN_MESSAGE = (
    "Signature validation is on but no Twilio auth token is configured. Set TWILIO_AUTH_TOKEN "
    "(Twilio Console > Account > API keys & tokens) or pass auth_token=... (or shared_keys=...); for local "
    f"development only, turn validation off with validate_signature=False or {VALIDATE_SIGNATURE_ENV}=false."
)


class ConfigurationError(RuntimeError):
    """The app cannot run as configured; the message says what to set."""


START_FAILURES = (ConfigurationError, StoreUnavailable)
"""What stops an app from starting (and what the start-up reports in one line)."""


def start_failure(exc: Exception) -> str:
    """What stopped the start, in words."""
    if isinstance(exc, StoreUnavailable):
        return f"the store is unavailable: {exc}"
    return str(exc)


def seconds(value: float | timedelta | None) -> float | None:
    """A duration given as seconds or a timedelta, in seconds."""
    return value.total_seconds() if isinstance(value, timedelta) else value


def check_public_url(url: str | None) -> str | None:
    """`url` when it is an http(s) URL with a host (the base URL Twilio calls), else ConfigurationError."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"public_url must be the http(s) URL Twilio calls, such as https://abc.ngrok.app, not {url!r}"
        )
    return url


def below(path: str, subpath: str | None) -> str | None:
    """`subpath` under the app's `path` ("/twilio/" and "events" make "/twilio/events"); None for none."""
    if subpath is None or not subpath.strip("/"):
        return None
    return path.rstrip("/") + "/" + subpath.strip("/")


def env_flag(name: str, *, default: bool) -> bool:
    """A yes/no environment variable: unset or empty is `default`; 0, false, no and off are False."""
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def delivery_mode(delivery: str | None) -> str:
    """`delivery`, else TWILIO_EVENTS_DELIVERY, else "inline"; refused unless inline or durable."""
    mode = delivery or os.environ.get(DELIVERY_ENV, "").strip() or "inline"
    if mode not in ("inline", "durable"):
        source = "delivery" if delivery else DELIVERY_ENV
        raise ConfigurationError(f"{source} must be 'inline' or 'durable', not {mode!r}")
    return mode


def store_for(delivery: str, store: Store | str | None) -> Store:
    """The store: `store`, else TWILIO_EVENTS_STORE, else memory (inline) or DEFAULT_STORE (durable)."""
    if store is None:
        store = os.environ.get(STORE_ENV, "").strip() or None
    if isinstance(store, str):
        try:
            store = open_store(store)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
    if delivery == "inline":
        return store if store is not None else MemoryStore()
    store = store if store is not None else open_store(DEFAULT_STORE)
    if not store.durable:
        raise ConfigurationError(
            f"durable delivery needs a store that survives the process (sqlite:///path.db or redis://...), "
            f"not {type(store).__name__}"
        )
    return store


def default_listeners(host: str = "0.0.0.0") -> list[Listener]:
    """Port 8090, or the ports of TWILIO_EVENTS_PORT ("8090" or "8090,8091"), as `twilio-events run` does,
    on `host`."""
    ports = [port.strip() for port in os.environ.get(PORT_ENV, "").split(",") if port.strip()]
    if not ports:
        return [Listener(host=host)]
    if not all(port.isdigit() for port in ports):
        raise ConfigurationError(
            f"{PORT_ENV}={os.environ[PORT_ENV]!r}: give a port, or ports separated by commas"
        )
    first = Listener(port=int(ports[0]), host=host)
    rest = [Listener(port=int(port), name=f"{first.name}-{port}", host=host) for port in ports[1:]]
    return [first, *rest]


def mount_path(parent: Any, app: object, prefix: str = "") -> str | None:
    """Where `app` is mounted inside the Starlette/FastAPI app `parent` (None when it is not found)."""
    from starlette.routing import Mount  # imported here: only a mounted app needs routing

    for route in getattr(parent, "routes", ()):
        if isinstance(route, Mount):
            if route.app is app:
                return prefix + route.path
            found = mount_path(route.app, app, prefix + route.path)
            if found is not None:
                return found
    return None

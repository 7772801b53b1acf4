"""Find the app a TARGET names (`module:attr`, `module`, `file.py` or `file.py:attr`): a TwilioEvents app,
or another ASGI app such as a FastAPI app that mounts one."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import NoReturn

from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from ..app import TwilioEvents
from ..channels import HandlerAlreadyRegistered
from ..config import NO_TOKEN_MESSAGE, ConfigurationError
from .output import CommandError
from .service import Service, mounted, reachable


def load_service(target: str) -> Service:
    """Import `target` and return what to serve; every failure is a one-line `CommandError`."""
    location, attr = split_target(target)
    module = _import_file(Path(location)) if is_path(location) else _import_module(location)
    service = _named_app(module, location, attr) if attr else _found_in(module, location, target)
    if service.events is not None:
        try:
            service.events.check_configuration()
        except ConfigurationError as exc:
            _import_failed(target, exc)
    return service


def _found_in(module: ModuleType, location: str, target: str) -> Service:
    """The module's app that mounts a TwilioEvents app, else its one TwilioEvents app."""
    outer = _mounting_apps(module)
    if len(outer) > 1:
        raise CommandError(
            f"several apps in {location} mount a TwilioEvents app ({', '.join(outer)}): choose one, "
            f"e.g. {location}:{next(iter(outer))}"
        )
    if outer:
        name, app = next(iter(outer.items()))
        return Service.of(app, f"{location}:{name}")
    return Service.of(_only_app(module, location), target)


def split_target(target: str) -> tuple[str, str | None]:
    """("module or file", "attr" or None)."""
    location, sep, attr = target.rpartition(":")
    if sep and location and all(part.isidentifier() for part in attr.split(".")):
        return location, attr
    return target, None


def is_path(location: str) -> bool:
    """True when `location` names a file rather than a dotted module."""
    return location.endswith(".py") or "/" in location or os.sep in location


def _import_file(path: Path) -> ModuleType:
    """Import a .py file as a module, its directory on the path so that it can import its neighbours."""
    if not path.is_file():
        raise CommandError(f"no such file: {path}")
    path = path.resolve()
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)  # so the file can import its neighbours
    name = path.stem if path.stem not in sys.modules else f"_twilio_events_target_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CommandError(f"cannot import {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        _import_failed(str(path), exc)
    return module


def _import_module(name: str) -> ModuleType:
    """Import a dotted module name, from the working directory too."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)  # console scripts do not put the working directory on the path
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise CommandError(
                f"no module named {name!r} here ({cwd}): run from the directory that holds it, "
                "or give the path to a .py file"
            ) from None
        _import_failed(name, exc)
    except BaseException as exc:
        _import_failed(name, exc)


def _import_failed(what: str, exc: BaseException) -> NoReturn:
    """Turn an exception raised while importing `what` into a one-line CommandError."""
    if isinstance(exc, (KeyboardInterrupt, SystemExit)):
        raise exc
    if isinstance(exc, (ConfigurationError, HandlerAlreadyRegistered)):
        hint = " With `twilio-events run`: --no-validate-signature." if str(exc) == NO_TOKEN_MESSAGE else ""
        raise CommandError(f"{exc}{hint}") from None
    if isinstance(exc, SyntaxError):
        raise CommandError(f"{exc.filename}, line {exc.lineno}: SyntaxError: {exc.msg}") from None
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}, line {frames[-1].lineno})" if frames else ""
    raise CommandError(f"importing {what} failed: {type(exc).__name__}: {exc}{where}") from None


def _apps(module: ModuleType) -> dict[str, TwilioEvents]:
    """The module's TwilioEvents apps by name, each once."""
    found: dict[str, TwilioEvents] = {}
    for name, value in vars(module).items():
        if isinstance(value, TwilioEvents) and not any(value is app for app in found.values()):
            found[name] = value
    return found


def _mounting_apps(module: ModuleType) -> dict[str, ASGIApp]:
    """The module's other apps that mount a TwilioEvents app, by name, outermost only."""
    found: dict[str, ASGIApp] = {}
    for name, value in vars(module).items():
        if _is_app_instance(value) and mounted(value) and all(value is not app for app in found.values()):
            found[name] = value
    reach = {name: reachable(app) for name, app in found.items()}
    return {
        name: app
        for name, app in found.items()
        if not any(id(app) in reach[other] for other in found if other != name)
    }


def _is_app_instance(value: object) -> bool:
    """True for an object that may be an ASGI app: callable, but no TwilioEvents app, class or function."""
    return (
        callable(value)
        and not isinstance(value, (TwilioEvents, type, ModuleType, BaseRoute))
        and not inspect.isroutine(value)
    )


def _only_app(module: ModuleType, location: str) -> TwilioEvents:
    """The module's one TwilioEvents app; none or several is a CommandError."""
    apps = _apps(module)
    if len(apps) == 1:
        return next(iter(apps.values()))
    if not apps:
        raise CommandError(
            f"no TwilioEvents app found in {location}: create one there (app = TwilioEvents()) "
            f"or name it as {location}:ATTRIBUTE"
        )
    names = ", ".join(apps)
    raise CommandError(
        f"several TwilioEvents apps in {location} ({names}): choose one, e.g. {location}:{next(iter(apps))}"
    )


def _named_app(module: ModuleType, location: str, attr: str) -> Service:
    """The app at the dotted `attr`: an app, an `async def` ASGI app, or what a factory function returns."""
    value: object = module
    for part in attr.split("."):
        if not hasattr(value, part):
            found = ", ".join(_apps(module)) or "none"
            raise CommandError(f"{location} has no attribute {attr!r} (TwilioEvents apps there: {found})")
        value = getattr(value, part)
    name = f"{location}:{attr}"
    if (inspect.isfunction(value) or inspect.ismethod(value)) and not inspect.iscoroutinefunction(value):
        try:
            value = value()  # an app factory
        except Exception as exc:
            _import_failed(f"{name}()", exc)
    if isinstance(value, type):
        raise CommandError(f"{name} is a class: name the app (an instance), or a function that returns one")
    if not callable(value):
        raise CommandError(f"{name} is a {type(value).__name__}, not a TwilioEvents app or another ASGI app")
    return Service.of(value, name)

"""`twilio-events run`: serve an app on one or more listeners, after a start-up summary (and reload on
changes, for development)."""

from __future__ import annotations

import argparse
import dataclasses
import errno
import logging
import os
import shlex
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ConfigurationError
from ..listener import Listener
from . import workers
from .options import PORT_ENV, add_command, env, env_flag, ports, split_list
from .output import CommandError

if TYPE_CHECKING:
    from ..app import TwilioEvents
    from .service import Service

VALIDATE_SIGNATURE_ENV = "TWILIO_EVENTS_VALIDATE_SIGNATURE"  # read by TwilioEvents() itself
STORE_ENV, DELIVERY_ENV = "TWILIO_EVENTS_STORE", "TWILIO_EVENTS_DELIVERY"  # so are these
RELOAD_ENV = "TWILIO_EVENTS_RELOAD"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_LISTENER_NAME = "twilioListener"


def add_parser(commands: Any) -> None:
    """`run [TARGET]` and its options."""
    run = add_command(
        commands,
        "run",
        "Serve a TwilioEvents app, or an ASGI app that mounts one, on one or more ports.",
        _EXAMPLES,
    )
    run.add_argument(
        "target",
        nargs="?",
        metavar="TARGET",
        help="module:attr, or a path to a .py file (the app in it that mounts a TwilioEvents app, else its "
        "one TwilioEvents app, is found by itself), e.g. examples/call_status.py or myproject.hooks:app; "
        "any ASGI app, or a function that returns one (env TWILIO_EVENTS_APP)",
    )
    run.add_argument(
        "--host", help="address to listen on (env TWILIO_EVENTS_HOST; default: the app's, 0.0.0.0)"
    )
    run.add_argument(
        "--port",
        action="append",
        metavar="PORT",
        help="port to listen on; repeat it or give a list (8090,8091) for several listeners "
        "(env TWILIO_EVENTS_PORT; default: the app's listeners, 8090)",
    )
    run.add_argument(
        "--listener-name",
        action="append",
        metavar="NAME",
        help="name of each listener in the logs, in --port order; later ports are named NAME-PORT "
        "(env TWILIO_EVENTS_LISTENER_NAME; default twilioListener)",
    )
    run.add_argument(
        "--public-url",
        metavar="URL",
        help="the base URL Twilio calls when the service sits behind a proxy or tunnel, e.g. "
        "https://abc.ngrok.app; signatures are checked for it (env TWILIO_EVENTS_PUBLIC_URL)",
    )
    run.add_argument(
        "--trust-forwarded-headers",
        action="store_true",
        help="rebuild the URL Twilio called from Forwarded / X-Forwarded-* headers; only behind a proxy "
        "that sets them (env TWILIO_EVENTS_TRUST_FORWARDED_HEADERS=true)",
    )
    run.add_argument(
        "--store",
        metavar="URL",
        help="where de-duplication keys and durable events are kept (sqlite:///path.db, "
        "redis://host:6379/0) when the app does not set store= itself (env TWILIO_EVENTS_STORE)",
    )
    run.add_argument(
        "--delivery",
        choices=("inline", "durable"),
        help="inline or durable, when the app does not set delivery= itself (env TWILIO_EVENTS_DELIVERY)",
    )
    run.add_argument(
        "--no-validate-signature",
        action="store_true",
        help="DANGEROUS: accept callbacks without a valid X-Twilio-Signature; local development only "
        f"(env {VALIDATE_SIGNATURE_ENV}=false)",
    )
    run.add_argument(
        "--console",
        action="store_true",
        help="serve the live console at PATH/console/, to this machine only unless "
        "TWILIO_EVENTS_CONSOLE_AUTH (user:password) is set (env TWILIO_EVENTS_CONSOLE=true)",
    )
    run.add_argument(
        "--reload",
        action="store_true",
        help=f"restart when a .py file next to the target changes; for development (env {RELOAD_ENV}=true)",
    )
    run.add_argument(
        "--metrics",
        action="store_true",
        help="serve Prometheus metrics at <path>metrics; needs pip install 'twilio-events[prometheus]' "
        "(env TWILIO_EVENTS_METRICS=true)",
    )
    run.add_argument(
        "--log-format",
        type=str.lower,
        choices=("text", "json"),
        help="json: one JSON object per log line (env TWILIO_EVENTS_LOG_FORMAT; default text)",
    )
    run.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="how much to log (env TWILIO_EVENTS_LOG_LEVEL; default info)",
    )
    workers.add_option(run)


def execute(args: argparse.Namespace) -> int:
    """Load the target, print the start-up summary and serve until interrupted."""
    from .loader import load_service
    from .summary import summary

    target = args.target or env("TWILIO_EVENTS_APP")
    if not target:
        raise CommandError("no TARGET: give `module:app` or a path to a .py file (or set TWILIO_EVENTS_APP)")
    reload = args.reload or bool(env_flag(RELOAD_ENV))
    log_level = (args.log_level or env("TWILIO_EVENTS_LOG_LEVEL") or "info").lower()
    if log_level not in LOG_LEVELS:
        raise CommandError(f"TWILIO_EVENTS_LOG_LEVEL={log_level!r}: choose one of {', '.join(LOG_LEVELS)}")
    listen_ports = ports(args.port, "--port") if args.port else ports([env(PORT_ENV) or ""], PORT_ENV)
    names = split_list(args.listener_name or [env("TWILIO_EVENTS_LISTENER_NAME") or ""])
    processes = workers.processes(args, reload=reload)
    if args.no_validate_signature:
        os.environ[VALIDATE_SIGNATURE_ENV] = "false"  # before the target is imported: the app reads it
    if args.store:
        os.environ[STORE_ENV] = args.store  # read by TwilioEvents() and by `inbox`, as the variable is
    if args.delivery:
        os.environ[DELIVERY_ENV] = args.delivery
    _observability_options(args)
    if reload:
        return _reload(target, args.argv)

    logging.getLogger("twilio_events").addFilter(_validation_warning_said_once)  # before the app warns
    logging.getLogger("twilio_events").addFilter(workers.dedupe_warning_said_once)
    service = load_service(target)
    _apply_options(service, args, listen_ports, names)
    if processes > 1 and service.events is not None and service.events.console is not None:
        raise CommandError(
            f"the console shows the callbacks of the process that serves it, so it needs one process: "
            f"leave out --workers {processes} (or TWILIO_EVENTS_WORKERS), or the console"
        )
    check_ports_free(service.listeners)
    print(summary(service, processes), flush=True)
    if service.events is not None and service.events.console is not None:
        url = service.listeners[0].url(service.path.rstrip("/") + "/console/")
        who = "with its user name and password" if service.events.console.credentials else "this machine only"
        print(f"\nLive console ({who}): {url}", flush=True)
    _warn_about_validation(service.events, args.no_validate_signature)
    workers.warn_about_dedupe(service, processes)
    logging.getLogger("twilio_events").setLevel(log_level.upper())
    try:
        _serve(service, log_level, processes)
    except SystemExit as exc:
        if exc.code and processes > 1:
            raise CommandError("a server process failed or ended unexpectedly (see the log above)") from None
        if exc.code:
            raise CommandError("the service could not start (the reason is logged above)") from None
    return 0


LOOPBACK = "127.0.0.1"


def _observability_options(args: argparse.Namespace) -> None:
    """--metrics and --log-format, as the variables the app (and its child under --reload) reads."""
    if args.metrics:
        os.environ["TWILIO_EVENTS_METRICS"] = "true"
    if args.log_format:
        os.environ["TWILIO_EVENTS_LOG_FORMAT"] = args.log_format
    log_format = (env("TWILIO_EVENTS_LOG_FORMAT") or "text").lower()
    if log_format not in ("text", "json"):
        raise CommandError(f"TWILIO_EVENTS_LOG_FORMAT={log_format!r}: choose text or json")


def _apply_options(
    service: Service, args: argparse.Namespace, listen_ports: Sequence[int], names: Sequence[str]
) -> None:
    """Override the app's public URL, forwarded-header trust and listeners with the options given."""
    host = args.host or env("TWILIO_EVENTS_HOST")
    app = service.events
    if host is None and app is not None and not app.validate_signature:
        host = LOOPBACK  # unsigned callbacks are accepted: only from this machine unless --host says so
    service.listeners = listeners_from_options(service.listeners, listen_ports, names, host)
    public_url = args.public_url or env("TWILIO_EVENTS_PUBLIC_URL")
    trust = True if args.trust_forwarded_headers else env_flag("TWILIO_EVENTS_TRUST_FORWARDED_HEADERS")
    if app is None:
        if args.console:
            raise CommandError("--console needs a TwilioEvents app (or an app that mounts one)")
        return
    if public_url:
        try:
            app.public_url = public_url
        except ConfigurationError as exc:
            raise CommandError(str(exc)) from None
    if trust is not None:
        app.trust_forwarded_headers = trust
    if args.console and app.console is None:
        app.enable_console()
    app.listeners = service.listeners


def _serve(service: Service, log_level: str, processes: int) -> None:
    """Serve the TwilioEvents app as it serves itself, or any other ASGI app the same way."""
    events = service.events
    if events is not None and service.app is events:
        events.run(log_level=log_level, processes=processes)
        return
    from .asgi_server import serve

    serve(
        service.app,
        service.listeners,
        path=service.path,
        proxy_headers=events is not None and events.trust_forwarded_headers,
        log_level=log_level,
        processes=processes,
    )


def _warn_about_validation(app: TwilioEvents | None, no_validate_signature: bool) -> None:
    """Say loudly that signatures are not checked, or that the app checks them despite the option."""
    if app is None:
        return
    if not app.validate_signature:
        print(
            "\n*** WARNING: X-Twilio-Signature validation is OFF. Anyone who can reach this service can fake "
            "Twilio callbacks: use this for local development only. ***\n",
            file=sys.stderr,
            flush=True,
        )
    elif no_validate_signature:
        print(
            "twilio-events: warning: the app sets validate_signature=True itself, so signatures are still "
            "validated despite --no-validate-signature",
            file=sys.stderr,
            flush=True,
        )


def _validation_warning_said_once(record: logging.LogRecord) -> bool:
    """Drop the app's own "validation is OFF" log lines: `run` prints that warning itself, once."""
    return not record.getMessage().startswith("X-Twilio-Signature validation is OFF")


def _reload(target: str, argv: Sequence[str]) -> int:
    """Serve in a child process restarted on changes to the .py files next to the target."""
    from .loader import is_path, split_target

    location = split_target(target)[0]
    watch = Path(location).resolve().parent if is_path(location) else Path.cwd()
    return serve_with_reload([arg for arg in argv if arg != "--reload"], watch)


def listeners_from_options(
    defaults: Sequence[Listener], ports: Sequence[int], names: Sequence[str], host: str | None
) -> list[Listener]:
    """The app's listeners, replaced by one per `--port` (named in order), on `--host` if given."""
    if len(set(ports)) != len(ports):
        raise CommandError(f"a port is given twice: {', '.join(map(str, ports))}")
    if ports:
        if len(names) > len(ports):
            raise CommandError(f"{len(names)} listener names for {len(ports)} ports")
        base = names[0] if names else DEFAULT_LISTENER_NAME
        listeners = [
            Listener(port=port, name=names[i] if i < len(names) else base if i == 0 else f"{base}-{port}")
            for i, port in enumerate(ports)
        ]
    else:
        if len(names) > len(defaults):
            raise CommandError(f"{len(names)} listener names for {len(defaults)} listener(s): add --port")
        listeners = [
            dataclasses.replace(listener, name=names[i]) if i < len(names) else listener
            for i, listener in enumerate(defaults)
        ]
    if host is not None:
        listeners = [dataclasses.replace(listener, host=host) for listener in listeners]
    return listeners


def check_ports_free(listeners: Sequence[Listener]) -> None:
    """Fail with one line, before anything starts, when a listener's port is taken."""
    for listener in listeners:
        try:
            addresses = socket.getaddrinfo(
                listener.host or None, listener.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise CommandError(f"cannot listen on host {listener.host!r}: {exc.strerror}") from None
        for family, kind, proto, _, address in addresses:
            with socket.socket(family, kind, proto) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
                try:
                    probe.bind(address)
                except OSError as exc:
                    if exc.errno == errno.EADDRINUSE:
                        raise CommandError(
                            f"port {listener.port} is already in use on {listener.host} "
                            f"(listener {listener.name}): stop what holds it, or choose another with --port "
                            f"(or {PORT_ENV}=...)"
                        ) from None
                    raise CommandError(
                        f"cannot listen on {listener.host}:{listener.port} (listener {listener.name}): "
                        f"{exc.strerror}"
                    ) from None


def serve_with_reload(child_args: Sequence[str], watch: Path) -> int:
    """Run `twilio-events <child_args>` in a child process, restarting it when a .py file under `watch`
    changes; every listener of the app is restarted together."""
    import watchfiles  # a dependency of uvicorn[standard]

    os.environ[RELOAD_ENV] = "false"  # the child serves; only this process watches
    command = shlex.join([sys.executable, "-m", "twilio_events", *child_args])

    def restarting(changes: set[tuple[watchfiles.Change, str]]) -> None:
        """Say which files changed before the child restarts."""
        changed = sorted({os.path.relpath(path) for _, path in changes})
        print(f"twilio-events: {', '.join(changed)} changed: restarting", file=sys.stderr, flush=True)

    print(f"twilio-events: reloading on changes to .py files under {watch}", file=sys.stderr, flush=True)
    watchfiles.run_process(
        watch,
        target=command,
        target_type="command",
        watch_filter=watchfiles.PythonFilter(),
        callback=restarting,
    )
    return 0


_EXAMPLES = """\
examples:
  twilio-events run examples/call_status.py
  twilio-events run myproject.hooks:app --port 8090 --port 8091
  twilio-events run main.py:app                           a FastAPI app that mounts a TwilioEvents app
  twilio-events run app.py --public-url https://abc.ngrok.app --log-level debug
  twilio-events run app.py --workers 4                    four server processes on the same port
  TWILIO_EVENTS_PORT=9000 twilio-events run app.py --reload
  twilio-events run app.py --no-validate-signature       (local only: anyone could fake callbacks)

Every option can come from its environment variable instead; an option given on the command line, or
its variable, overrides what the app itself sets. Signature validation needs TWILIO_AUTH_TOKEN.
"""

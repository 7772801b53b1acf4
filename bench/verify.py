"""Checks made once per server before it is measured: it is up, it accepts the signed callback
and answers the expected TwiML, and (when it validates) it refuses forged ones with 403."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from urllib.parse import urlencode

from .payload import BODY, EMPTY_TWIML, HOST, PARAMS, PATH, SignedRequest, sign, signed_request

HEALTH_PATH = PATH.rstrip("/") + "/health"
"""Where twilio_events reports its queue: {"queued": n, "running": n, "dead_letters": n, ...}."""


class CheckFailed(Exception):
    """The server cannot be measured; the message says why."""


def wait_until_serving(process: subprocess.Popen[bytes], port: int, timeout_s: float = 30) -> None:
    """Wait until the server answers HTTP at all (any status: a GET is not a callback)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CheckFailed(f"the server exited with code {process.returncode} before serving")
        try:
            _request(port, "GET", b"", {})
            return
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
    raise CheckFailed(f"the server did not answer on port {port} within {timeout_s:.0f} s")


def check_server(port: int, validates_signature: bool) -> list[str]:
    """Run the checks; returns what was checked, raises CheckFailed on the first failure."""
    signed = signed_request(port)
    status, body = _post(port, signed.body, signed)
    if not 200 <= status <= 299:
        raise CheckFailed(f"the correctly signed callback got {status}, not 2xx: {body[:200]!r}")
    if body != EMPTY_TWIML:
        raise CheckFailed(f"the correctly signed callback got an unexpected body: {body[:200]!r}")
    passed = ["accepts the signed callback (2xx, empty TwiML)"]
    if not validates_signature:
        return passed

    wrong_token = SignedRequest(signed.url, BODY, sign(signed.url, auth_token="not-the-auth-token"))
    status, body = _post(port, BODY, wrong_token)
    if status != 403:
        raise CheckFailed(f"a callback signed with another auth token got {status}, not 403")
    passed.append("refuses another token's signature (403)")

    tampered = urlencode([(n, "43" if n == "CallDuration" else v) for n, v in PARAMS]).encode()
    status, body = _post(port, tampered, signed)
    if status != 403:
        raise CheckFailed(f"a tampered body with the original signature got {status}, not 403")
    passed.append("refuses a tampered body (403)")
    return passed


def wait_until_drained(port: int, timeout_s: float, poll_s: float = 0.1) -> tuple[int, float]:
    """Durable rows: wait until the server's workers have handled every accepted event, as its
    GET /health reports (queued and running both 0). Returns the events left when called and the
    seconds the wait took; raises CheckFailed when they are not handled within `timeout_s`."""
    started = time.monotonic()
    backlog: int | None = None
    while True:
        try:
            status, body = _request(port, "GET", b"", {}, HEALTH_PATH)
            health = json.loads(body)
            left = int(health["queued"]) + int(health["running"])
        except (OSError, http.client.HTTPException, ValueError, KeyError) as exc:
            raise CheckFailed(f"GET {HEALTH_PATH} failed: {exc}") from None
        if status != 200:
            raise CheckFailed(f"GET {HEALTH_PATH} answered {status}: {body[:200]!r}")
        if int(health.get("dead_letters", 0)):
            raise CheckFailed(f"{health['dead_letters']} events became dead letters: a no-op handler failed")
        backlog = left if backlog is None else backlog
        waited = time.monotonic() - started
        if not left:
            return backlog, waited
        if waited > timeout_s:
            raise CheckFailed(
                f"{left} of {backlog} events still not handled {timeout_s:.0f} s after the load"
            )
        time.sleep(poll_s)


def _post(port: int, body: bytes, signed: SignedRequest) -> tuple[int, bytes]:
    try:
        return _request(port, "POST", body, signed.headers)
    except (OSError, http.client.HTTPException) as exc:
        raise CheckFailed(f"POST failed: {exc}") from None


def _request(
    port: int, method: str, body: bytes, headers: dict[str, str], path: str = PATH
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(HOST, port, timeout=5)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()

"""A fake of Twilio's REST API for Calls and Messages: a real HTTP server on 127.0.0.1 that the app's REST
client reaches through `api_base_url`. It checks Basic auth, serves JSON resources shaped like Twilio's,
and can answer with scripted failures (429, 5xx) or slowly, as the real API sometimes does."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RESOURCE = re.compile(
    r"^/2010-04-01/Accounts/(?P<account>AC\w+)/(?P<kind>Calls|Messages)/(?P<sid>\w+)\.json$"
)


@dataclass
class Scripted:
    """An answer to give instead of the resource: a status code and Twilio's error document, or a delay."""

    status: int = 200
    code: int | None = None
    message: str = ""
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class FakeRestApi(ThreadingHTTPServer):
    """Calls and Messages of one account, fetched by SID."""

    daemon_threads = True

    def __init__(self, account_sid: str, auth_token: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.resources: dict[str, dict[str, Any]] = {}
        self.script: list[Scripted] = []
        self.requests: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def add_message(self, sid: str, status: str, **fields: Any) -> None:
        """A Message resource as Twilio's API returns it."""
        self.resources[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "status": status,
            "from": "+14155550199",
            "to": "+14155550100",
            "body": "Hello",
            "error_code": None,
            "error_message": None,
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_updated": "Fri, 08 Jan 2016 17:18:38 +0000",
            **fields,
        }

    def add_call(self, sid: str, status: str, **fields: Any) -> None:
        """A Call resource as Twilio's API returns it."""
        self.resources[sid] = {
            "sid": sid,
            "account_sid": self.account_sid,
            "status": status,
            "from": "+14155550100",
            "to": "+14155550199",
            "duration": None,
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_updated": "Fri, 08 Jan 2016 17:18:38 +0000",
            **fields,
        }

    def fetches(self, sid: str) -> int:
        """How many times the resource `sid` was asked for."""
        with self.lock:
            return sum(1 for _, path in self.requests if sid in path)


class _Handler(BaseHTTPRequestHandler):
    server: FakeRestApi

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests.append(("GET", self.path))
            scripted = self.server.script.pop(0) if self.server.script else None
        if scripted is not None:
            time.sleep(scripted.delay)
            if scripted.status != 200:
                self._json(
                    scripted.status, {"code": scripted.code, "message": scripted.message}, scripted.headers
                )
                return
        expected = base64.b64encode(f"{self.server.account_sid}:{self.server.auth_token}".encode()).decode()
        if self.headers.get("Authorization") != f"Basic {expected}":
            self._json(401, {"code": 20003, "message": "Authenticate", "status": 401})
            return
        match = _RESOURCE.match(self.path.split("?", 1)[0])
        resource = self.server.resources.get(match["sid"]) if match else None
        if resource is None:
            self._json(404, {"code": 20404, "message": "The requested resource was not found", "status": 404})
            return
        self._json(200, resource)

    def _json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up on us
            self.wfile.write(data)


@contextmanager
def fake_rest_api(account_sid: str, auth_token: str) -> Iterator[FakeRestApi]:
    """A running fake, stopped at the end of the block."""
    server = FakeRestApi(account_sid, auth_token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

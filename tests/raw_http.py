"""HTTP/1.1 over raw sockets, for the tests that need what an HTTP client will not send: silence, a
stalled body, a byte at a time, an upgrade."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

import pytest

from twilio_events.testing import sign

from .conftest import DEADLINE, FORM, TOKEN, Pairs, encode_form, pairs_of


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def connect(port: int) -> socket.socket:
    """A TCP connection to 127.0.0.1:`port` whose reads give up after DEADLINE seconds."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
    sock.settimeout(DEADLINE)
    return sock


def request_bytes(
    method: str, target: str, port: int, headers: Mapping[str, str] | None = None, body: bytes = b""
) -> bytes:
    """A request as it goes on the wire, with Host and (for a body) Content-Length."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body and not any(name.lower() == "content-length" for name in headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def signed_callback(
    port: int,
    params: Pairs,
    *,
    target: str = "/",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> bytes:
    """A callback POST signed like Twilio's for the URL it is sent to (TOKEN as the auth token)."""
    pairs = pairs_of(params)
    signature = sign(f"http://127.0.0.1:{port}{target}", pairs, TOKEN)
    all_headers = {"Content-Type": FORM, "X-Twilio-Signature": signature, **(headers or {})}
    return request_bytes("POST", target, port, all_headers, encode_form(pairs) if body is None else body)


def read_response(sock: socket.socket) -> RawResponse:
    """Read one response (status line, headers, a Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            pytest.fail(f"the connection closed before a whole response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return RawResponse(int(status_line.split()[1]), headers, body[:length])


def exchange(port: int, data: bytes) -> RawResponse:
    """Send `data` on a new connection and read the one response."""
    with connect(port) as sock:
        sock.sendall(data)
        return read_response(sock)


def is_open(sock: socket.socket) -> bool:
    """True while the server has neither closed nor reset the connection (nothing is consumed)."""
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        return sock.recv(1, socket.MSG_PEEK) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.settimeout(timeout)


def seconds_until_closed(sock: socket.socket, opened: float) -> float:
    """Read and discard until the server closes `sock`; the seconds since `opened` (time.monotonic())."""
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"the server kept the connection open for {DEADLINE:g} s")
    except ConnectionResetError:
        pass
    return time.monotonic() - opened

"""One accepted streaming connection: a tiny HTTP/1.1 request reader, then raw bytes with an idle timer.

The upgrade protocols take the socket over right after the request head, so the head is read here by hand:
a buffered reader could swallow the first protocol bytes. Idle means no byte in either direction for
`idle_timeout` seconds, as the kubelet's streams count it.
"""

import contextlib
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from adapters.readiness import wait_readable

_MAX_HEAD = 64 * 1024
# Seconds a new connection has to send its whole request head (trickled bytes do not extend it).
HEAD_TIMEOUT = 30.0
# How often a blocked read wakes to check the idle timer.
_IDLE_TICK = 1.0


class ConnectionClosed(OSError):
    """The peer went away, the connection idled out, or it was closed on purpose."""


@dataclass
class HttpRequest:
    method: str
    target: str
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query)

    def header(self, name: str) -> str:
        """The first value of a header (case-insensitive), "" if absent."""
        values = self.header_values(name)
        return values[0] if values else ""

    def header_values(self, name: str) -> list[str]:
        """Every value of a header, split at commas, as Go's handshake helpers read them."""
        found: list[str] = []
        for key, value in self.headers:
            if key.lower() == name.lower():
                found += [v.strip() for v in value.split(",") if v.strip()]
        return found


class Transport:
    def __init__(self, sock: socket.socket, idle_timeout: float) -> None:
        self.sock = sock
        self.idle_timeout = idle_timeout
        self._pending = b""
        self._write_lock = threading.Lock()
        self._closed = threading.Event()
        self._last_activity = time.monotonic()
        self._head_deadline: float | None = None
        self._tick = min(_IDLE_TICK, idle_timeout)
        sock.settimeout(None)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def read_request(self, timeout: float = HEAD_TIMEOUT) -> HttpRequest:
        """The request head; a client that has not sent all of it within `timeout` seconds is dropped,
        however slowly it keeps sending."""
        data = b""
        self._head_deadline = time.monotonic() + timeout
        try:
            while b"\r\n\r\n" not in data:
                if len(data) > _MAX_HEAD:
                    raise ValueError("request head too large")
                data += self.recv(4096)
        finally:
            self._head_deadline = None
        head, _, self._pending = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            raise ValueError(f"bad request line {lines[0]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"bad header line {line!r}")
            headers.append((name.strip(), value.strip()))
        return HttpRequest(parts[0], parts[1], headers)

    def recv(self, size: int) -> bytes:
        """Up to `size` bytes; raises ConnectionClosed at end of stream, on error or when idle too long."""
        if self._pending:
            chunk, self._pending = self._pending[:size], self._pending[size:]
            return chunk
        while True:
            if self._closed.is_set():
                raise ConnectionClosed("connection closed")
            if self._head_deadline is not None and time.monotonic() >= self._head_deadline:
                self.close()
                raise ConnectionClosed("request head not received in time")
            try:
                if not self._readable():
                    if time.monotonic() - self._last_activity >= self.idle_timeout:
                        self.close()
                        raise ConnectionClosed("idle timeout")
                    continue
                chunk = self.sock.recv(size)
            except ConnectionClosed:
                raise
            except (OSError, ValueError) as err:
                self.close()
                raise ConnectionClosed(str(err)) from err
            if not chunk:
                self.close()
                raise ConnectionClosed("peer closed the connection")
            self._last_activity = time.monotonic()
            return chunk

    def recv_exact(self, size: int) -> bytes:
        parts = []
        while size:
            chunk = self.recv(size)
            parts.append(chunk)
            size -= len(chunk)
        return b"".join(parts)

    def send(self, data: bytes) -> None:
        with self._write_lock:
            if self._closed.is_set():
                raise ConnectionClosed("connection closed")
            try:
                self.sock.sendall(data)
            except (OSError, ValueError) as err:
                self.close()
                raise ConnectionClosed(str(err)) from err
            self._last_activity = time.monotonic()

    def _readable(self) -> bool:
        # TLS may hold decrypted bytes that poll() cannot see.
        if isinstance(self.sock, ssl.SSLSocket) and self.sock.pending():
            return True
        tick = self._tick
        if self._head_deadline is not None:
            tick = min(tick, max(self._head_deadline - time.monotonic(), 0.0))
        return wait_readable(self.sock, tick)

    def respond(self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes = b"") -> None:
        lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers)]
        if status != 101:
            lines += [f"Content-Length: {len(body)}", "Content-Type: text/plain; charset=utf-8"]
        self.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def shutdown_write(self) -> None:
        with self._write_lock, contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

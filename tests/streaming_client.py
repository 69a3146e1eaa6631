"""A client of the Kubernetes streaming protocols, written from how kubectl (client-go) speaks them.

SPDY/3.1: upgrade with `X-Stream-Protocol-Version`, then open one stream per stdio stream plus `error`
(and `resize` for a tty), in client-go's order; stdin ends with FIN; the outcome is read from the error
stream. Port-forward opens an error and a data stream per connection with `port` and `requestID`.
WebSocket: channel-prefixed binary messages (v4/v5.channel.k8s.io), v5's close signal on channel 255.

The SPDY framing here is written independently of the server's, so a shared misunderstanding of the wire
format has to be made twice to go unnoticed; only the SPDY/3 dictionary constant is shared.
"""

import base64
import contextlib
import hashlib
import json
import os
import socket
import ssl
import struct
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from adapters.streaming.spdy import DICTIONARY

WAIT = 30.0


class HttpError(Exception):
    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(f"HTTP {status}: {body.decode(errors='replace')}")
        self.status = status
        self.body = body


def _connect(url: str) -> tuple[socket.socket, str]:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    sock = socket.create_connection((host, port), timeout=WAIT)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        sock = context.wrap_socket(sock, server_hostname=host)
    sock.settimeout(None)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    return sock, target


def _read_head(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise HttpError(0, data)
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    if status != 101:
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(4096)
            if not chunk:
                break
            rest += chunk
        raise HttpError(status, rest)
    return status, headers, rest


def http_get(url: str) -> tuple[int, bytes]:
    """A plain request (no upgrade): the status and body."""
    sock, target = _connect(url)
    with sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        try:
            _read_head(sock)
        except HttpError as err:
            return err.status, err.body
    return 101, b""


# ---------------------------------------------------------------------------------------------------- SPDY


class _ClientStream:
    def __init__(self, conn: "SpdyClient", stream_id: int) -> None:
        self.conn = conn
        self.id = stream_id
        self.replied = threading.Event()
        self.cond = threading.Condition()
        self.data = bytearray()
        self.ended = False
        self.reset = False

    def write(self, data: bytes) -> None:
        self.conn.send(struct.pack(">II", self.id, len(data)) + data)

    def close(self) -> None:
        self.conn.send(struct.pack(">II", self.id, (1 << 24) | 0))

    def read_until(self, predicate: Any, timeout: float = WAIT) -> bytes:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(bytes(self.data)) or self.ended, timeout):
                raise TimeoutError(f"stream {self.id}: condition not met; got {bytes(self.data)!r}")
            return bytes(self.data)

    def read_all(self, timeout: float = WAIT) -> bytes:
        with self.cond:
            if not self.cond.wait_for(lambda: self.ended, timeout):
                raise TimeoutError(f"stream {self.id} did not end; got {bytes(self.data)!r}")
            return bytes(self.data)


class SpdyClient:
    """`tunnel=True` speaks SPDY inside WebSocket binary messages (`SPDY/3.1+portforward.k8s.io`), the
    way client-go's tunnelling dialer does."""

    def __init__(self, url: str, protocols: list[str], tunnel: bool = False) -> None:
        self._ws: Connection | None = None
        if tunnel:
            self.sock, headers, pending = _websocket_handshake(url, protocols)
            self.protocol = headers.get("sec-websocket-protocol", "")
            self._ws = Connection(ConnectionType.CLIENT)
            self._ws.receive_data(pending)
            self._pending = b""
        else:
            self.sock, target = _connect(url)
            lines = [f"POST {target} HTTP/1.1", "Host: pycrio", "Connection: Upgrade", "Upgrade: SPDY/3.1"]
            lines += [f"X-Stream-Protocol-Version: {p}" for p in protocols]
            try:
                self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
                _, headers, self._pending = _read_head(self.sock)
                upgrade = headers.get("upgrade")
                if "upgrade" not in headers.get("connection", "").lower() or upgrade != "SPDY/3.1":
                    raise HttpError(101, b"server did not upgrade to SPDY/3.1")
            except BaseException:
                self.sock.close()
                raise
            self.protocol = headers.get("x-stream-protocol-version", "")
        self._deflate = zlib.compressobj(9, zdict=DICTIONARY)
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._lock = threading.Lock()
        self._streams: dict[int, _ClientStream] = {}
        self._next_id = 1
        self.goaway = threading.Event()
        self.closed = threading.Event()
        self.frames_seen: list[int] = []
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        self._reader.start()

    def send(self, data: bytes) -> None:
        with self._lock:
            self._raw_send(data)

    def _raw_send(self, data: bytes) -> None:
        if self._ws is None:
            self.sock.sendall(data)
        else:
            self.sock.sendall(self._ws.send(BytesMessage(data=data)))

    def _raw_recv(self, n: int) -> bytes:
        if self._ws is None:
            return self.sock.recv(n)
        out = b""
        while not out:
            with self._lock:
                events = list(self._ws.events())
            for event in events:
                if isinstance(event, BytesMessage):
                    out += bytes(event.data)
                elif isinstance(event, CloseConnection):
                    with self._lock:
                        self.sock.sendall(self._ws.send(event.response()))
                    return b""
                elif isinstance(event, Ping):
                    with self._lock:
                        self.sock.sendall(self._ws.send(event.response()))
            if not out:
                data = self.sock.recv(65536)
                if not data:
                    return b""
                with self._lock:
                    self._ws.receive_data(data)
        return out

    def open_stream(self, headers: dict[str, str], wait_reply: bool = True) -> _ClientStream:
        block = struct.pack(">I", len(headers))
        for name, value in headers.items():
            block += struct.pack(">I", len(name)) + name.lower().encode()
            block += struct.pack(">I", len(value)) + value.encode()
        with self._lock:
            stream_id = self._next_id
            self._next_id += 2
            stream = _ClientStream(self, stream_id)
            self._streams[stream_id] = stream
            compressed = self._deflate.compress(block) + self._deflate.flush(zlib.Z_SYNC_FLUSH)
            payload = struct.pack(">IIBB", stream_id, 0, 0, 0) + compressed
            self._raw_send(struct.pack(">HHI", 0x8003, 1, len(payload)) + payload)
        if wait_reply and not stream.replied.wait(WAIT):
            raise TimeoutError(f"no SYN_REPLY for stream {stream_id}")
        return stream

    def ping(self, ping_id: int) -> None:
        self.send(struct.pack(">HHII", 0x8003, 6, 4, ping_id))

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            if self._pending:
                take, self._pending = self._pending[: n - len(out)], self._pending[n - len(out) :]
                out += take
                continue
            chunk = self._raw_recv(n - len(out))
            if not chunk:
                raise EOFError
            self._pending = chunk
            continue
        return out

    def _read_loop(self) -> None:
        try:
            while True:
                word, flags_len = struct.unpack(">II", self._recv(8))
                flags, length = flags_len >> 24, flags_len & 0xFFFFFF
                payload = self._recv(length)
                if word & 0x80000000:
                    frame_type = word & 0xFFFF
                    self.frames_seen.append(frame_type)
                    self._control(frame_type, flags, payload)
                else:
                    stream = self._streams.get(word & 0x7FFFFFFF)
                    if stream is not None:
                        with stream.cond:
                            stream.data += payload
                            stream.ended = stream.ended or bool(flags & 1)
                            stream.cond.notify_all()
        except (EOFError, OSError):
            pass
        finally:
            self.closed.set()
            for stream in list(self._streams.values()):
                with stream.cond:
                    stream.ended = True
                    stream.cond.notify_all()

    def _control(self, frame_type: int, flags: int, payload: bytes) -> None:
        if frame_type == 2:  # SYN_REPLY
            (stream_id,) = struct.unpack_from(">I", payload)
            self._inflate.decompress(payload[4:])
            stream = self._streams[stream_id & 0x7FFFFFFF]
            stream.replied.set()
            if flags & 1:
                with stream.cond:
                    stream.ended = True
                    stream.cond.notify_all()
        elif frame_type == 3:  # RST_STREAM
            (stream_id,) = struct.unpack_from(">I", payload)
            reset = self._streams.get(stream_id & 0x7FFFFFFF)
            if reset is not None:
                with reset.cond:
                    reset.ended = reset.reset = True
                    reset.cond.notify_all()
                reset.replied.set()
        elif frame_type == 7:  # GOAWAY
            self.goaway.set()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(WAIT)

    def abort(self) -> None:
        """Drop the TCP connection without any goodbye (a client killed midway)."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close()


# ----------------------------------------------------------------------------------------------- WebSocket


def _websocket_handshake(url: str, protocols: list[str]) -> tuple[socket.socket, dict[str, str], bytes]:
    sock, target = _connect(url)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {target} HTTP/1.1",
        "Host: pycrio",
        "Connection: Upgrade",
        "Upgrade: websocket",
        "Sec-WebSocket-Version: 13",
        f"Sec-WebSocket-Key: {key}",
    ]
    if protocols:
        lines.append(f"Sec-WebSocket-Protocol: {', '.join(protocols)}")
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        _, headers, pending = _read_head(sock)
        accept = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()
        if headers.get("sec-websocket-accept") != base64.b64encode(accept).decode():
            raise HttpError(101, b"bad Sec-WebSocket-Accept")
    except BaseException:
        sock.close()
        raise
    return sock, headers, pending


class WebSocketClient:
    def __init__(self, url: str, protocols: list[str]) -> None:
        self.sock, headers, pending = _websocket_handshake(url, protocols)
        self.protocol = headers.get("sec-websocket-protocol", "")
        self._ws = Connection(ConnectionType.CLIENT)
        self._lock = threading.Lock()
        self.cond = threading.Condition()
        self.channels: dict[int, bytearray] = {}
        self.messages: list[tuple[int, bytes]] = []
        self.closed = False
        self.close_code: int | None = None
        self._partial = b""
        self._reader = threading.Thread(target=self._read_loop, args=(pending,), daemon=True)
        self._reader.start()

    def _send(self, event: Any) -> None:
        with self._lock:
            self.sock.sendall(self._ws.send(event))

    def write(self, channel: int, data: bytes) -> None:
        if "base64" in self.protocol:
            self._send(TextMessage(data=str(channel) + base64.b64encode(data).decode()))
        else:
            self._send(BytesMessage(data=bytes([channel]) + data))

    def _read_loop(self, pending: bytes) -> None:
        data = pending
        try:
            while True:
                if data:
                    with self._lock:
                        self._ws.receive_data(data)
                        events = list(self._ws.events())
                    for event in events:
                        if isinstance(event, Ping):
                            self._send(event.response())
                        elif isinstance(event, CloseConnection):
                            self.close_code = event.code
                            self._send(event.response())
                            raise EOFError
                        elif isinstance(event, BytesMessage | TextMessage):
                            self._message(event)
                data = self.sock.recv(65536)
                if not data:
                    raise EOFError
        except (EOFError, OSError):
            pass
        finally:
            with self.cond:
                self.closed = True
                self.cond.notify_all()

    def _message(self, event: BytesMessage | TextMessage) -> None:
        if isinstance(event, TextMessage):
            text = event.data
            raw = bytes([ord(text[0]) - 48]) + base64.b64decode(text[1:]) if text else b""
        else:
            raw = bytes(event.data)
        self._partial += raw
        if not event.message_finished or not self._partial:
            return
        message, self._partial = self._partial, b""
        with self.cond:
            self.messages.append((message[0], message[1:]))
            self.channels.setdefault(message[0], bytearray()).extend(message[1:])
            self.cond.notify_all()

    def read_until(self, channel: int, predicate: Any, timeout: float = WAIT) -> bytes:
        with self.cond:
            if not self.cond.wait_for(
                lambda: predicate(bytes(self.channels.get(channel, b""))) or self.closed, timeout
            ):
                raise TimeoutError(f"channel {channel}: got {bytes(self.channels.get(channel, b''))!r}")
            return bytes(self.channels.get(channel, b""))

    def wait_closed(self, timeout: float = WAIT) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.closed, timeout):
                raise TimeoutError("websocket not closed by the server")

    def channel(self, channel: int) -> bytes:
        with self.cond:
            return bytes(self.channels.get(channel, b""))

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self._reader.join(WAIT)


# ------------------------------------------------------------------------------------ remote command API


@dataclass
class CommandResult:
    stdout: bytes
    stderr: bytes
    status: dict[str, Any] | None  # the v4 status; None when the error stream was empty
    error_text: bytes
    protocol: str
    frames_seen: list[int] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """client-go's reading of the status: 0 on success, the ExitCode cause on NonZeroExitCode."""
        if self.status is None or self.status.get("status") == "Success":
            return 0
        if self.status.get("reason") == "NonZeroExitCode":
            for cause in self.status.get("details", {}).get("causes", []):
                if cause.get("reason") == "ExitCode":
                    return int(cause["message"])
        raise RuntimeError(f"command failed: {self.status}")


class SpdyCommand:
    """An exec or attach over SPDY, driven step by step."""

    def __init__(
        self,
        url: str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        tty: bool,
        protocols: list[str] | None = None,
    ) -> None:
        self.client = SpdyClient(url, protocols or ["v4.channel.k8s.io"])
        self.protocol = self.client.protocol
        open_ = self.client.open_stream
        # client-go's order: error first, then stdin, stdout, stderr, resize.
        self.error = open_({"streamType": "error"})
        self.stdin: _ClientStream | None = open_({"streamType": "stdin"}) if stdin else None
        self.stdout: _ClientStream | None = open_({"streamType": "stdout"}) if stdout else None
        self.stderr: _ClientStream | None = open_({"streamType": "stderr"}) if stderr and not tty else None
        resize = tty and self.protocol not in ("channel.k8s.io", "v2.channel.k8s.io")
        self.resize_stream = open_({"streamType": "resize"}) if resize else None
        # client-go closes its side of the error stream right away: only the server writes to it.
        self.error.close()

    def send(self, data: bytes) -> None:
        assert self.stdin is not None
        self.stdin.write(data)

    def send_lines_until_echoed(self, echo: bytes, attempts: int = 100) -> None:
        """An attach joins a running process: lines sent before it reads are lost; send until one echoes."""
        assert self.stdout is not None
        for attempt in range(attempts):
            self.send(b"line%d\n" % attempt)
            try:
                self.stdout.read_until(lambda out: echo in out, 0.2)
                return
            except TimeoutError:
                continue

    def close_stdin(self) -> None:
        assert self.stdin is not None
        self.stdin.close()

    def resize(self, width: int, height: int) -> None:
        assert self.resize_stream is not None
        self.resize_stream.write(json.dumps({"Width": width, "Height": height}).encode() + b"\n")

    def wait(self) -> CommandResult:
        out = self.stdout.read_all() if self.stdout else b""
        err = self.stderr.read_all() if self.stderr else b""
        error = self.error.read_all()
        status = json.loads(error) if error and self.protocol.startswith("v4.") else None
        self.client.close()
        return CommandResult(out, err, status, error, self.protocol, self.client.frames_seen)


class WebSocketCommand:
    """An exec or attach over WebSocket (v4 or v5 channel protocol), driven step by step."""

    STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4

    def __init__(self, url: str, protocols: list[str] | None = None) -> None:
        self.client = WebSocketClient(url, protocols or ["v5.channel.k8s.io", "v4.channel.k8s.io"])
        self.protocol = self.client.protocol

    def send(self, data: bytes) -> None:
        self.client.write(self.STDIN, data)

    def close_stdin(self) -> None:
        """v5's close signal for the stdin channel."""
        self.client._send(BytesMessage(data=bytes([255, self.STDIN])))

    def resize(self, width: int, height: int) -> None:
        self.client.write(self.RESIZE, json.dumps({"Width": width, "Height": height}).encode())

    def wait(self) -> CommandResult:
        self.client.wait_closed()
        error = self.client.channel(self.ERROR)
        status = json.loads(error) if error and self.protocol.startswith(("v4.", "v5.")) else None
        result = CommandResult(
            self.client.channel(self.STDOUT), self.client.channel(self.STDERR), status, error, self.protocol
        )
        self.client.close()
        return result


# ------------------------------------------------------------------------------------------- port forward


class SpdyPortForward:
    """kubectl port-forward over one SPDY connection: each `connect` is one forwarded connection.
    `tunnel=True` is newer kubectl's default: the SPDY connection inside a WebSocket."""

    def __init__(self, url: str, tunnel: bool = False) -> None:
        if tunnel:
            self.client = SpdyClient(url, ["SPDY/3.1+portforward.k8s.io"], tunnel=True)
        else:
            self.client = SpdyClient(url, ["portforward.k8s.io"])
        self._next_request = 0

    def connect(self, port: int) -> tuple[_ClientStream, _ClientStream]:
        request_id = str(self._next_request)
        self._next_request += 1
        headers = {"streamType": "error", "port": str(port), "requestID": request_id}
        error = self.client.open_stream(headers)
        error.close()
        data = self.client.open_stream({**headers, "streamType": "data"})
        return data, error

    def close(self) -> None:
        self.client.close()


def wait_until(predicate: Any, timeout: float = WAIT, interval: float = 0.05) -> bool:
    """Poll for a condition (not a speed check: the deadline is generous)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

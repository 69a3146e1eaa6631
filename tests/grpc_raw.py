"""gRPC requests written frame by frame over a unix socket, for clients that break the protocol on purpose
(a length prefix of 4 GiB, a request that stops half-way), which no gRPC library will send."""

import socket
import struct
from pathlib import Path

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, SETTINGS = 0, 1, 4
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _literal(name: str, value: str) -> bytes:
    """HPACK "literal header field without indexing, new name", no Huffman (names and values < 127)."""
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def request_headers(path: str, stream: int = 1) -> bytes:
    block = b"".join(
        _literal(name, value)
        for name, value in [(":method", "POST"), (":scheme", "http"), (":path", path),
                            (":authority", "localhost"), ("content-type", "application/grpc"),
                            ("te", "trailers")]
    )  # fmt: skip
    return frame(HEADERS, END_HEADERS, stream, block)


def grpc_message(length: int, body: bytes = b"") -> bytes:
    """A gRPC length-prefixed message whose prefix claims `length` bytes, followed by `body`."""
    return b"\x00" + struct.pack(">I", length) + body


def open_connection(socket_path: Path, timeout: float = 30.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    sock.connect(str(socket_path))
    return sock


def start(sock: socket.socket, path: str, stream: int = 1) -> None:
    """Preface, empty SETTINGS and the request's HEADERS: the call is open, no message sent yet."""
    sock.sendall(PREFACE + frame(SETTINGS, 0, 0, b"") + request_headers(path, stream))


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes the connection (or `limit` bytes)."""
    received = b""
    while len(received) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received


def frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(type, flags, stream, payload) of each whole frame in `data`."""
    found = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        kind, flags = data[3], data[4]
        stream = int.from_bytes(data[5:9], "big") & 0x7FFFFFFF
        found.append((kind, flags, stream, data[9 : 9 + length]))
        data = data[9 + length :]
    return found


RST_STREAM, GOAWAY = 3, 7


def read_answer(sock: socket.socket, stream: int = 1) -> list[tuple[int, int, int, bytes]]:
    """Frames until `stream` ends (trailers with END_STREAM, or RST_STREAM), the connection is told to go
    (GOAWAY) or closed."""
    data = b""
    while True:
        found = frames(data)
        for kind, flags, number, _ in found:
            if number == stream and (kind == RST_STREAM or (kind == HEADERS and flags & END_STREAM)):
                return found
            if kind == GOAWAY:
                return found
        chunk = sock.recv(65536)
        if not chunk:
            return found
        data += chunk

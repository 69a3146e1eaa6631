"""SPDY/3.1 as Kubernetes uses it for streaming (the server side of an upgraded HTTP/1.1 connection).

Frames (draft-mbelshe-httpbis-spdy-00): control frames carry a version, a type, flags and a length; data
frames carry a stream id. Header blocks are zlib-compressed with one compression context per direction for
the whole connection, primed with the SPDY/3 dictionary. The peer (client) opens every stream with
SYN_STREAM; the server answers SYN_REPLY, then both sides send DATA until each has sent FIN.

Flow control: SPDY/3.1 has per-stream send windows, but Kubernetes' SPDY library (spdystream) never sends
WINDOW_UPDATE and ignores the ones it receives. Honouring a send window would therefore stall every stream
after 64 KiB, so, like spdystream, this side does not wait on windows; it does send WINDOW_UPDATE for what
it consumed, which is what a flow-controlling peer needs. Back-pressure on input comes from TCP: the reader
stops reading while a stream's unread input is over a cap.
"""

import contextlib
import struct
import threading
import zlib
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import structlog

from adapters.streaming.transport import ConnectionClosed

_log = structlog.get_logger("pycrio.streaming.spdy")

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
RST_PROTOCOL_ERROR = 1
RST_REFUSED_STREAM = 3
RST_CANCEL = 5
GOAWAY_OK = 0
INITIAL_WINDOW = 64 * 1024
# DATA frames sent are at most this big (the protocol allows 16 MiB; smaller keeps streams interleaved).
MAX_DATA_CHUNK = 32 * 1024
# A stream's unread input above this stops the reader until the consumer catches up.
MAX_BUFFERED_INPUT = 1024 * 1024

_WORD_TEXT = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language "
    "accept-ranges age allow authorization cache-control connection content-base content-encoding "
    "content-language content-length content-location content-md5 content-range content-type date etag "
    "expect expires from host if-match if-modified-since if-none-match if-range if-unmodified-since "
    "last-modified location max-forwards pragma proxy-authenticate proxy-authorization range referer "
    "retry-after server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status"
)
_WORDS = [
    *_WORD_TEXT.split(),
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
# The SPDY/3 header compression dictionary: length-prefixed common header words, then common values.
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()

Headers = dict[str, list[str]]


class ProtocolError(Exception):
    pass


class HeaderCodec:
    """One direction's header compression (or decompression) context."""

    def __init__(self) -> None:
        self._compress = zlib.compressobj(zlib.Z_BEST_COMPRESSION, zdict=DICTIONARY)
        self._decompress = zlib.decompressobj(zdict=DICTIONARY)

    def encode(self, headers: Iterable[tuple[str, str]]) -> bytes:
        pairs = list(headers)
        raw = struct.pack(">I", len(pairs))
        for name, value in pairs:
            n, v = name.lower().encode(), value.encode()
            raw += struct.pack(">I", len(n)) + n + struct.pack(">I", len(v)) + v
        return self._compress.compress(raw) + self._compress.flush(zlib.Z_SYNC_FLUSH)

    def decode(self, block: bytes) -> Headers:
        try:
            raw = self._decompress.decompress(block)
        except zlib.error as err:
            raise ProtocolError(f"bad header block: {err}") from err
        headers: Headers = {}
        try:
            (count,) = struct.unpack_from(">I", raw, 0)
            offset = 4
            for _ in range(count):
                (n,) = struct.unpack_from(">I", raw, offset)
                name = raw[offset + 4 : offset + 4 + n].decode()
                offset += 4 + n
                (v,) = struct.unpack_from(">I", raw, offset)
                value = raw[offset + 4 : offset + 4 + v].decode()
                offset += 4 + v
                headers.setdefault(name.lower(), []).extend(value.split("\x00"))
        except (struct.error, UnicodeDecodeError) as err:
            raise ProtocolError(f"bad header block: {err}") from err
        return headers


def control_frame(frame_type: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">HHI", 0x8000 | VERSION, frame_type, (flags << 24) | len(payload)) + payload


def data_frame(stream_id: int, flags: int, payload: bytes) -> bytes:
    return struct.pack(">II", stream_id & 0x7FFFFFFF, (flags << 24) | len(payload)) + payload


class SpdyStream:
    """A stream the client opened: read its DATA, write ours. Safe to use from several threads."""

    def __init__(self, conn: "SpdyConnection", stream_id: int, headers: Headers, remote_done: bool) -> None:
        self.conn = conn
        self.id = stream_id
        self.headers = headers
        self._cond = threading.Condition()
        self._input: deque[bytes] = deque()
        self._buffered = 0
        self._remote_done = remote_done
        self._local_done = False
        self._unacked = 0

    def header(self, name: str) -> str:
        values = self.headers.get(name.lower(), [])
        return values[0] if values else ""

    # Called by the connection's reader.
    def _feed(self, data: bytes, fin: bool) -> None:
        with self._cond:
            while self._buffered > MAX_BUFFERED_INPUT and not self._remote_done:
                self._cond.wait(1.0)
                if self.conn.closed:
                    return
            if data and not self._remote_done:
                self._input.append(data)
                self._buffered += len(data)
            if fin:
                self._remote_done = True
            self._cond.notify_all()

    def end_input(self) -> None:
        """No more input is taken: readers get what is queued, later DATA is dropped."""
        with self._cond:
            self._remote_done = True
            self._cond.notify_all()

    def read(self, size: int) -> bytes:
        with self._cond:
            while not self._input and not self._remote_done:
                self._cond.wait()
            if not self._input:
                return b""
            chunk = self._input.popleft()
            if len(chunk) > size:
                self._input.appendleft(chunk[size:])
                chunk = chunk[:size]
            self._buffered -= len(chunk)
            self._unacked += len(chunk)
            ack = self._unacked if self._unacked >= INITIAL_WINDOW // 2 else 0
            if ack:
                self._unacked = 0
            self._cond.notify_all()
        if ack:
            self.conn.send_window_update(self.id, ack)
        return chunk

    def write(self, data: bytes) -> None:
        if self._local_done:
            raise ConnectionClosed(f"stream {self.id} already closed")
        view = memoryview(data)
        for start in range(0, len(view), MAX_DATA_CHUNK):
            self.conn.send_raw(data_frame(self.id, 0, bytes(view[start : start + MAX_DATA_CHUNK])))

    def close(self) -> None:
        """Half-close: send FIN; the client may still send."""
        with self._cond:
            if self._local_done:
                return
            self._local_done = True
        with contextlib.suppress(ConnectionClosed):
            self.conn.send_raw(data_frame(self.id, FLAG_FIN, b""))

    def reset_by_peer(self) -> None:
        """The client reset the stream: no more input, and writing to it fails from now on."""
        with self._cond:
            self._local_done = True
        self.end_input()

    def reset(self, status: int = RST_CANCEL) -> None:
        with self._cond:
            self._local_done = True
        self.end_input()
        self.conn.send_reset(self.id, status)


class ByteTransport(Protocol):
    """What SPDY runs on: the upgraded socket (`Transport`) or a WebSocket tunnel
    (`websocket_channels.Tunnel`)."""

    @property
    def closed(self) -> bool: ...

    def recv_exact(self, size: int) -> bytes: ...

    def send(self, data: bytes) -> None: ...

    def shutdown_write(self) -> None: ...

    def close(self) -> None: ...


class StreamHandler(Protocol):
    """Both run on the connection's reader thread, so they must not block."""

    def accept_stream(self, stream: SpdyStream) -> bool:
        """Whether to take the stream the client opened (False resets it)."""
        ...

    def stream_opened(self, stream: SpdyStream) -> None:
        """The reply went out: the stream may be written to now."""
        ...


class SpdyConnection:
    """The server end of one SPDY/3.1 connection. `serve()` reads frames until the connection ends."""

    def __init__(self, transport: ByteTransport, handler: StreamHandler) -> None:
        self.transport = transport
        self._handler = handler
        self._tx = HeaderCodec()
        self._rx = HeaderCodec()
        self._tx_lock = threading.Lock()
        self._streams: dict[int, SpdyStream] = {}
        self._streams_lock = threading.Lock()
        self._last_stream_id = 0
        self.done = threading.Event()

    @property
    def closed(self) -> bool:
        return self.transport.closed

    def send_raw(self, frame: bytes) -> None:
        self.transport.send(frame)

    def send_reset(self, stream_id: int, status: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            self.send_raw(control_frame(RST_STREAM, 0, struct.pack(">II", stream_id, status)))
        with self._streams_lock:
            self._streams.pop(stream_id, None)

    def send_window_update(self, stream_id: int, delta: int) -> None:
        with contextlib.suppress(ConnectionClosed):
            self.send_raw(control_frame(WINDOW_UPDATE, 0, struct.pack(">II", stream_id, delta)))

    def _reply(self, stream_id: int) -> None:
        # Compression state and frame order must match, so both happen under one lock.
        with self._tx_lock:
            block = self._tx.encode([])
            self.send_raw(control_frame(SYN_REPLY, 0, struct.pack(">I", stream_id) + block))

    def serve(self) -> None:
        try:
            while True:
                self._read_frame()
        except (ConnectionClosed, ProtocolError) as err:
            _log.debug("spdy connection ended", reason=str(err))
        finally:
            self.transport.close()
            with self._streams_lock:
                streams = list(self._streams.values())
                self._streams.clear()
            for stream in streams:
                stream.end_input()
            self.done.set()

    def close(self, grace: float) -> None:
        """GOAWAY and end our side; give the client up to `grace` seconds to read it all and hang up (closing
        a socket with unread input would reset the connection and could lose our last frames)."""
        with contextlib.suppress(ConnectionClosed):
            self.send_raw(control_frame(GOAWAY, 0, struct.pack(">II", self._last_stream_id, GOAWAY_OK)))
        self.transport.shutdown_write()
        self.done.wait(grace)
        self.transport.close()

    def _read_frame(self) -> None:
        head = self.transport.recv_exact(8)
        first, second = struct.unpack(">II", head)
        flags, length = second >> 24, second & 0xFFFFFF
        payload = self.transport.recv_exact(length) if length else b""
        if not first & 0x80000000:
            self._on_data(first & 0x7FFFFFFF, flags, payload)
            return
        version, frame_type = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        if frame_type == SYN_STREAM:
            self._on_syn_stream(flags, payload)
        elif frame_type == RST_STREAM:
            (stream_id,) = struct.unpack_from(">I", payload)
            with self._streams_lock:
                stream = self._streams.pop(stream_id & 0x7FFFFFFF, None)
            if stream is not None:
                stream.reset_by_peer()
        elif frame_type == PING:
            # Client pings have odd ids; echo them. Our own pings (even) are never sent.
            (ping_id,) = struct.unpack_from(">I", payload)
            if ping_id % 2 == 1:
                self.send_raw(control_frame(PING, 0, payload[:4]))
        elif frame_type == GOAWAY:
            raise ConnectionClosed("peer sent GOAWAY")
        elif frame_type == HEADERS:
            (stream_id,) = struct.unpack_from(">I", payload)
            self._rx.decode(payload[4:])  # keeps the shared decompression context in step
            if flags & FLAG_FIN:
                self._on_data(stream_id & 0x7FFFFFFF, FLAG_FIN, b"")
        elif frame_type in (SETTINGS, WINDOW_UPDATE):
            pass  # see the module docstring on flow control
        elif frame_type == SYN_REPLY:
            # We never open streams; still decode to keep the header context in step.
            self._rx.decode(payload[4:])
        else:
            _log.debug("ignoring unknown spdy control frame", type=frame_type)

    def _on_syn_stream(self, flags: int, payload: bytes) -> None:
        if len(payload) < 10:
            raise ProtocolError("short SYN_STREAM")
        stream_id = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
        headers = self._rx.decode(payload[10:])
        if stream_id % 2 == 0 or stream_id <= self._last_stream_id:
            self.send_reset(stream_id, RST_PROTOCOL_ERROR)
            return
        self._last_stream_id = stream_id
        stream = SpdyStream(
            self, stream_id, headers, remote_done=bool(flags & (FLAG_FIN | FLAG_UNIDIRECTIONAL))
        )
        if not self._handler.accept_stream(stream):
            self.send_reset(stream_id, RST_REFUSED_STREAM)
            return
        with self._streams_lock:
            self._streams[stream_id] = stream
        self._reply(stream_id)
        self._handler.stream_opened(stream)

    def _on_data(self, stream_id: int, flags: int, payload: bytes) -> None:
        with self._streams_lock:
            stream = self._streams.get(stream_id)
        if stream is not None:
            stream._feed(payload, bool(flags & FLAG_FIN))

    def forget(self, stream: SpdyStream) -> None:
        """Stop routing frames to a finished stream; its reader sees end of input."""
        with self._streams_lock:
            self._streams.pop(stream.id, None)
        stream.end_input()

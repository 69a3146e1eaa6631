"""ttrpc over NRI's multiplexed socket, both directions on one connection.

NRI carries two ttrpc byte streams over one unix socket: every chunk is framed by an 8-byte header (big
endian connection id, payload length). Connection 1 is the plugin's service (we are its client), 2 the
runtime's (the plugin calls us). Inside each stream, ttrpc frames are a 10-byte header (length, stream id,
message type 1 request / 2 response, flags) and a protobuf Request or Response. A peer announcing a chunk
or a message larger than ttrpc's 4 MiB limit, or sending garbage, loses its connection; nothing it sends
can make us buffer more than one message per stream.
"""

import contextlib
import socket
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Future

from adapters.nri.generated import ttrpc_pb2

PLUGIN_CONN = 1
RUNTIME_CONN = 2
MUX_HEADER = struct.Struct(">II")
TTRPC_HEADER = struct.Struct(">IIBB")
MESSAGE_MAX = 4 << 20
CHUNK_MAX = TTRPC_HEADER.size + MESSAGE_MAX
# What we write per chunk: upstream's reader hands each chunk whole to ttrpc's 4 KiB read buffer and fails
# a larger one ("cannot allocate memory"), so frames go out in 4 KiB pieces.
CHUNK_WRITE = 4096
# Requests from the peer served at once; a peer sending more before the first are answered is dropped.
MAX_SERVING = 8
TYPE_REQUEST = 1
TYPE_RESPONSE = 2
FLAG_REMOTE_CLOSED = 1

# (service, method, payload) -> (grpc status code, message, payload)
Handler = Callable[[str, str, bytes], tuple[int, str, bytes]]


class ProtocolError(Exception):
    """The peer broke the framing; the connection is closed."""


class CallFailed(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class MuxConnection:
    """One plugin's socket: calls to its service, requests from it served by `handler` on a thread each."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        on_close: Callable[[], None],
        calls_on: int = PLUGIN_CONN,
        serves_on: int = RUNTIME_CONN,
    ) -> None:
        """The runtime's side by default; a plugin (the tests') swaps the two connection ids."""
        self._calls_on, self._serves_on = calls_on, serves_on
        self._sock = sock
        self._handler = handler
        self._on_close = on_close
        self._write_lock = threading.Lock()
        self._lock = threading.Lock()
        self._pending: dict[int, Future[ttrpc_pb2.Response]] = {}
        self._next_stream = 1
        self._buffers = {PLUGIN_CONN: bytearray(), RUNTIME_CONN: bytearray()}
        self._closed = threading.Event()
        self._serving = threading.BoundedSemaphore(MAX_SERVING)
        self._reader = threading.Thread(target=self._read_loop, name="nri-mux-reader", daemon=True)

    def start(self) -> None:
        self._reader.start()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()
        with self._lock:
            pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionError("connection closed"))
        self._on_close()

    # --- writing ------------------------------------------------------------------------------------------

    def _send(self, conn: int, stream: int, kind: int, flags: int, payload: bytes) -> None:
        if len(payload) > MESSAGE_MAX:
            raise ProtocolError(f"message of {len(payload)} bytes is over ttrpc's limit")
        frame = TTRPC_HEADER.pack(len(payload), stream, kind, flags) + payload
        with self._write_lock:
            for start in range(0, len(frame), CHUNK_WRITE):
                chunk = frame[start : start + CHUNK_WRITE]
                self._sock.sendall(MUX_HEADER.pack(conn, len(chunk)) + chunk)

    def call(self, service: str, method: str, payload: bytes, timeout: float) -> bytes:
        """One unary call to the plugin; TimeoutError past `timeout`, CallFailed on an error status,
        ConnectionError once closed."""
        future: Future[ttrpc_pb2.Response] = Future()
        with self._lock:
            if self._closed.is_set():
                raise ConnectionError("connection closed")
            stream = self._next_stream
            self._next_stream += 2  # client streams are odd
            self._pending[stream] = future
        request = ttrpc_pb2.Request(
            service=service, method=method, payload=payload, timeout_nano=int(timeout * 1e9)
        )
        try:
            self._send(self._calls_on, stream, TYPE_REQUEST, FLAG_REMOTE_CLOSED, request.SerializeToString())
            response = future.result(timeout)
        except TimeoutError:
            raise
        except OSError as err:  # TimeoutError is one too: caught above
            raise ConnectionError(str(err)) from None
        finally:
            with self._lock:
                self._pending.pop(stream, None)
        if response.status.code:
            raise CallFailed(response.status.code, response.status.message)
        return bytes(response.payload)

    # --- reading ------------------------------------------------------------------------------------------

    def _read_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self._sock.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return bytes(data)

    def _read_loop(self) -> None:
        try:
            while not self._closed.is_set():
                conn, length = MUX_HEADER.unpack(self._read_exact(MUX_HEADER.size))
                if length > CHUNK_MAX:
                    raise ProtocolError(f"chunk of {length} bytes announced")
                payload = self._read_exact(length)
                buffer = self._buffers.get(conn)
                if buffer is None:
                    continue  # a connection nobody listens on: dropped, as upstream does
                buffer += payload
                self._drain(conn, buffer)
        except (OSError, EOFError, ProtocolError, ValueError):
            pass
        finally:
            self.close()

    def _drain(self, conn: int, buffer: bytearray) -> None:
        while len(buffer) >= TTRPC_HEADER.size:
            length, stream, kind, _flags = TTRPC_HEADER.unpack_from(buffer)
            if length > MESSAGE_MAX:
                raise ProtocolError(f"message of {length} bytes announced")
            if len(buffer) < TTRPC_HEADER.size + length:
                return
            body = bytes(buffer[TTRPC_HEADER.size : TTRPC_HEADER.size + length])
            del buffer[: TTRPC_HEADER.size + length]
            if conn == self._calls_on and kind == TYPE_RESPONSE:
                response = ttrpc_pb2.Response.FromString(body)
                with self._lock:
                    future = self._pending.get(stream)
                if future is not None and not future.done():
                    future.set_result(response)
            elif conn == self._serves_on and kind == TYPE_REQUEST:
                request = ttrpc_pb2.Request.FromString(body)
                if not self._serving.acquire(blocking=False):
                    raise ProtocolError(f"more than {MAX_SERVING} requests at once")
                serve = threading.Thread(
                    target=self._serve, args=(stream, request), name="nri-serve", daemon=True
                )
                serve.start()
            else:
                raise ProtocolError(f"message type {kind} on connection {conn}")

    def _serve(self, stream: int, request: ttrpc_pb2.Request) -> None:
        try:
            code, message, payload = self._handler(request.service, request.method, request.payload)
        finally:
            self._serving.release()
        response = ttrpc_pb2.Response(payload=payload)
        response.status.code = code
        response.status.message = message
        try:
            self._send(self._serves_on, stream, TYPE_RESPONSE, 0, response.SerializeToString())
        except (OSError, ProtocolError):
            self.close()

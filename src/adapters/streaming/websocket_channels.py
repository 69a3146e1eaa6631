"""The framed side of Kubernetes WebSocket streams (see `websocket`): channel connections and the SPDY tunnel,
on wsproto. Imported by the stream handlers when a WebSocket stream is first served.
"""

import base64
import contextlib
import threading

import structlog
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from adapters.streaming.buffers import InputBuffer
from adapters.streaming.transport import ConnectionClosed, Transport
from adapters.streaming.websocket import CLOSE_CHANNEL, V5

_log = structlog.get_logger("pycrio.streaming.websocket")


class _ServerWebSocket:
    """The server side of one wsproto connection over a transport. The lock keeps each frame whole when
    several threads send, and keeps wsproto's state consistent between the reader and the writers."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._ws = Connection(ConnectionType.SERVER)
        self._lock = threading.Lock()

    def receive(self, data: bytes) -> list[object]:
        with self._lock:
            self._ws.receive_data(data)
            return list(self._ws.events())

    def send(self, event: object) -> None:
        with self._lock:
            try:
                wire = self._ws.send(event)  # type: ignore[arg-type]
            except LocalProtocolError as err:
                raise ConnectionClosed(f"websocket closing: {err}") from err
            self.transport.send(wire)

    def answer(self, event: Ping | CloseConnection) -> None:
        """Pong a ping; echo a close the peer started (not the answer to ours)."""
        if isinstance(event, Ping) or self._ws.state == ConnectionState.REMOTE_CLOSING:
            self.send(event.response())


class ChannelConnection:
    """The server end of a channel.k8s.io-style WebSocket: `serve()` reads until the connection ends."""

    def __init__(self, transport: Transport, protocol: str, readable: set[int]) -> None:
        self.transport = transport
        self.protocol = protocol
        self._base64 = "base64" in protocol
        self._ws = _ServerWebSocket(transport)
        self.inputs = {channel: InputBuffer() for channel in readable}
        self.done = threading.Event()
        self._partial: list[bytes | str] = []

    def write(self, channel: int, data: bytes) -> None:
        if self._base64:
            message: BytesMessage | TextMessage = TextMessage(
                data=str(channel) + base64.b64encode(data).decode()
            )
        else:
            message = BytesMessage(data=bytes([channel]) + data)
        self._ws.send(message)

    def serve(self) -> None:
        try:
            while True:
                for event in self._ws.receive(self.transport.recv(65536)):
                    self._handle(event)
        except (ConnectionClosed, RemoteProtocolError) as err:
            _log.debug("websocket connection ended", reason=str(err))
        finally:
            self.transport.close()
            for buffer in self.inputs.values():
                buffer.end()
            self.done.set()

    def _handle(self, event: object) -> None:
        if isinstance(event, Ping):
            self._ws.answer(event)
        elif isinstance(event, CloseConnection):
            self._ws.answer(event)
            raise ConnectionClosed("peer closed the websocket")
        elif isinstance(event, BytesMessage | TextMessage):
            self._partial.append(bytes(event.data) if isinstance(event.data, bytearray) else event.data)
            if event.message_finished:
                parts, self._partial = self._partial, []
                if isinstance(event, TextMessage):
                    self._dispatch_text("".join(p for p in parts if isinstance(p, str)))
                else:
                    self._dispatch(b"".join(p for p in parts if isinstance(p, bytes)))

    def _dispatch_text(self, text: str) -> None:
        if not text:
            return
        try:
            payload = base64.b64decode(text[1:])
        except ValueError:
            _log.debug("dropping a message that is not base64", channel=text[0])
            return
        self._dispatch(bytes([ord(text[0]) - ord("0")]) + payload)

    def _dispatch(self, message: bytes) -> None:
        if not message:
            return
        channel, payload = message[0], message[1:]
        if channel == CLOSE_CHANNEL and self.protocol == V5:
            if len(payload) == 1 and payload[0] in self.inputs:
                self.inputs[payload[0]].end()
            return
        buffer = self.inputs.get(channel)
        if buffer is not None:
            buffer.feed(payload)

    def end_inputs(self) -> None:
        """Later input is dropped rather than queued, so a reader never waits on a consumer that left."""
        for buffer in self.inputs.values():
            buffer.end()

    def close(self, grace: float) -> None:
        """Send a normal close, let the client answer for up to `grace` seconds, then drop the socket."""
        self.end_inputs()
        with contextlib.suppress(ConnectionClosed):
            self._ws.send(CloseConnection(code=1000))
        self.transport.shutdown_write()
        self.done.wait(grace)
        self.transport.close()


class ChannelSink:
    """One writable channel as a ByteSink; `close` is a no-op because channels have no half-close."""

    def __init__(self, conn: ChannelConnection, channel: int) -> None:
        self._conn = conn
        self._channel = channel

    def write(self, data: bytes) -> None:
        if data:
            self._conn.write(self._channel, data)

    def close(self) -> None:
        pass


class ChannelDuplex(ChannelSink):
    """A readable and writable channel (a port-forward data channel)."""

    def __init__(self, conn: ChannelConnection, channel: int) -> None:
        super().__init__(conn, channel)
        self._input = conn.inputs[channel]

    def read(self, size: int) -> bytes:
        return self._input.read(size)


class Tunnel:
    """A byte stream carried in binary WebSocket messages, for SPDY tunnelled over WebSocket
    (`SPDY/3.1+portforward.k8s.io`, what newer kubectl and client-go try first for port-forward). It offers
    the same calls as `Transport`, so the SPDY connection runs on it unchanged."""

    def __init__(self, transport: Transport) -> None:
        self._transport = transport
        self._ws = _ServerWebSocket(transport)
        self._pending = bytearray()
        self._ended = False

    @property
    def closed(self) -> bool:
        return self._transport.closed

    def recv_exact(self, size: int) -> bytes:
        while len(self._pending) < size:
            if self._ended:
                raise ConnectionClosed("tunnel closed")
            self._pump()
        chunk = bytes(self._pending[:size])
        del self._pending[:size]
        return chunk

    def _pump(self) -> None:
        data = self._transport.recv(65536)
        try:
            events = self._ws.receive(data)
        except RemoteProtocolError as err:
            raise ConnectionClosed(f"websocket protocol error: {err}") from err
        for event in events:
            if isinstance(event, BytesMessage):
                self._pending += event.data
            elif isinstance(event, Ping):
                self._ws.answer(event)
            elif isinstance(event, CloseConnection):
                self._ws.answer(event)
                self._ended = True
            elif isinstance(event, TextMessage):
                raise ConnectionClosed("text message in a SPDY tunnel")

    def send(self, data: bytes) -> None:
        self._ws.send(BytesMessage(data=data))

    def shutdown_write(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            self._ws.send(CloseConnection(code=1000))
        self._transport.shutdown_write()

    def close(self) -> None:
        self._transport.close()

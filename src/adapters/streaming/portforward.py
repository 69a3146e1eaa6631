"""PortForward sessions, as the kubelet serves them.

SPDY (`portforward.k8s.io`): for every forwarded connection the client opens an error stream and a data
stream carrying the same `port` and `requestID` headers; once both are open the data stream is wired to
the port and failures are written to the error stream. Many connections share one SPDY connection.

WebSocket (`v4.channel.k8s.io`): the ports come from the request; port i gets data channel 2i and error
channel 2i+1, and the server opens each channel with the port as two little-endian bytes.
"""

import contextlib
import struct
import threading

import structlog

from adapters.streaming import spdy, websocket
from adapters.streaming.remotecommand import CLOSE_GRACE, STREAM_CREATION_TIMEOUT, negotiate_spdy
from adapters.streaming.transport import ConnectionClosed, HttpRequest, Transport
from domain.streaming import PortForwardRequest
from ports.streaming import ByteSink, Cancellation, DuplexStream, PortForwarder

_log = structlog.get_logger("pycrio.streaming.portforward")

SPDY_PROTOCOLS = ["portforward.k8s.io"]
# SPDY tunnelled in WebSocket binary messages, as newer kubectl and client-go try first.
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
WEBSOCKET_PROTOCOLS = [TUNNEL_PROTOCOL, "v4.channel.k8s.io", "v4.base64.channel.k8s.io", ""]


def forward_one(
    forwarder: PortForwarder,
    sandbox_id: str,
    port: int,
    data: DuplexStream,
    error: ByteSink,
    cancelled: Cancellation,
) -> None:
    try:
        forwarder.port_forward(sandbox_id, port, data, cancelled)
    except Exception as err:  # reported to the client on its error stream
        message = f"error forwarding port {port} to pod {sandbox_id}: {err}"
        _log.info("port forward failed", sandbox_id=sandbox_id, port=port, error=str(err))
        with contextlib.suppress(ConnectionClosed):
            error.write(message.encode())


class _Pair:
    def __init__(self) -> None:
        self.data: spdy.SpdyStream | None = None
        self.error: spdy.SpdyStream | None = None
        self.timer: threading.Timer | None = None


class _SpdyPortForward:
    """Pairs the error and data streams of each forwarded connection and starts the forward."""

    def __init__(self, forwarder: PortForwarder, sandbox_id: str) -> None:
        self._forwarder = forwarder
        self._sandbox_id = sandbox_id
        self._lock = threading.Lock()
        self._pairs: dict[str, _Pair] = {}
        self.workers: list[threading.Thread] = []
        self.conn: spdy.SpdyConnection | None = None

    def accept_stream(self, stream: spdy.SpdyStream) -> bool:
        port = stream.header("port")
        if not port.isdigit() or not 0 < int(port) <= 65535:
            _log.info("refusing a port-forward stream without a valid port header", port=port)
            return False
        return stream.header("streamType") in ("error", "data")

    def _request_id(self, stream: spdy.SpdyStream) -> str:
        request_id = stream.header("requestID")
        if request_id:
            return request_id
        # Old clients send no request id: their error and data streams have consecutive odd ids.
        return str(stream.id if stream.header("streamType") == "error" else stream.id - 2)

    def stream_opened(self, stream: spdy.SpdyStream) -> None:
        request_id = self._request_id(stream)
        with self._lock:
            pair = self._pairs.setdefault(request_id, _Pair())
            kind = stream.header("streamType")
            if getattr(pair, kind) is not None:
                message = f"error processing stream for request {request_id}: {kind} stream already assigned"
                stream.write(message.encode())
                stream.reset()
                return
            setattr(pair, kind, stream)
            if pair.data is None or pair.error is None:
                if pair.timer is None:
                    pair.timer = threading.Timer(STREAM_CREATION_TIMEOUT, self._expire, (request_id,))
                    pair.timer.daemon = True
                    pair.timer.start()
                return
            del self._pairs[request_id]
            if pair.timer is not None:
                pair.timer.cancel()
        worker = threading.Thread(
            target=self._forward, args=(pair.data, pair.error), name="port-forward", daemon=True
        )
        # A long port-forward session serves many connections: keep only the live workers.
        self.workers = [w for w in self.workers if w.is_alive()] + [worker]
        worker.start()

    def _expire(self, request_id: str) -> None:
        with self._lock:
            pair = self._pairs.pop(request_id, None)
        if pair is None:
            return
        for stream in (pair.error, pair.data):
            if stream is not None:
                try:
                    if stream is pair.error:
                        stream.write(f"timed out waiting for streams of request {request_id}".encode())
                    stream.reset()
                except ConnectionClosed:
                    pass

    def _forward(self, data: spdy.SpdyStream, error: spdy.SpdyStream) -> None:
        assert self.conn is not None
        port = int(data.header("port"))
        try:
            forward_one(self._forwarder, self._sandbox_id, port, data, error, self.conn.done)
        finally:
            data.close()
            error.close()
            self.conn.forget(data)
            self.conn.forget(error)

    def cancel_timers(self) -> None:
        with self._lock:
            for pair in self._pairs.values():
                if pair.timer is not None:
                    pair.timer.cancel()
            self._pairs.clear()


def serve_spdy(
    transport: Transport, request: HttpRequest, forward: PortForwardRequest, forwarder: PortForwarder
) -> None:
    if negotiate_spdy(transport, request, SPDY_PROTOCOLS) is None:
        return
    _run_spdy(transport, forward, forwarder)


def _run_spdy(transport: spdy.ByteTransport, forward: PortForwardRequest, forwarder: PortForwarder) -> None:
    handler = _SpdyPortForward(forwarder, forward.sandbox_id)
    conn = spdy.SpdyConnection(transport, handler)
    handler.conn = conn
    try:
        conn.serve()  # until the client hangs up or the connection idles out
    finally:
        handler.cancel_timers()
        for worker in list(handler.workers):
            worker.join()
        conn.close(0)


def serve_websocket(
    transport: Transport, request: HttpRequest, forward: PortForwardRequest, forwarder: PortForwarder
) -> None:
    # wsproto is loaded on the first WebSocket stream, not at start-up.
    from adapters.streaming import websocket_channels

    protocol = websocket.handshake(transport, request, WEBSOCKET_PROTOCOLS)
    if protocol is None:
        return
    if protocol == TUNNEL_PROTOCOL:
        _run_spdy(websocket_channels.Tunnel(transport), forward, forwarder)
        return
    ports = list(forward.ports)
    conn = websocket_channels.ChannelConnection(transport, protocol, {2 * i for i in range(len(ports))})
    reader = threading.Thread(target=conn.serve, name="websocket-reader", daemon=True)
    reader.start()
    workers = []
    try:
        for i, port in enumerate(ports):
            prefix = struct.pack("<H", port)
            conn.write(2 * i, prefix)
            conn.write(2 * i + 1, prefix)
        for i, port in enumerate(ports):
            data = websocket_channels.ChannelDuplex(conn, 2 * i)
            error = websocket_channels.ChannelSink(conn, 2 * i + 1)
            worker = threading.Thread(
                target=forward_one,
                args=(forwarder, forward.sandbox_id, port, data, error, conn.done),
                name="port-forward",
                daemon=True,
            )
            worker.start()
            workers.append(worker)
        for worker in workers:
            worker.join()
    except ConnectionClosed as err:
        _log.debug("websocket port forward ended early", reason=str(err))
    finally:
        conn.close(CLOSE_GRACE)
        for worker in workers:
            worker.join()
        reader.join()

"""The streaming HTTP server: `/exec/<token>`, `/attach/<token>` and `/portforward/<token>`.

A token names a request the CRI handler validated; it is consumed when its URL is opened with an upgrade
request, so a URL works once (a plain GET, from a scanner or a proxy's probe, does not use it up). Each
connection gets its own thread, up to `max_connections`: past that a connection is answered 503 and
closed at once, so idle connections cannot take all the daemon's threads. The upgrade (SPDY/3.1 or
WebSocket) picks the wire protocol. The accepting thread sleeps in poll(2) until a connection or `stop()`
(socketserver's serve_forever would wake every half second to look for a shutdown).
"""

import contextlib
import socket
import socketserver
import ssl
import threading
from typing import Any

import structlog

from adapters.readiness import Wakeup, serve_until_stopped
from adapters.streaming.transport import HEAD_TIMEOUT, ConnectionClosed, HttpRequest, Transport
from domain.streaming import AttachRequest, ExecRequest, PortForwardRequest, RequestCache
from ports.streaming import ContainerStreams, PortForwarder

_log = structlog.get_logger("pycrio.streaming")


_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 40\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\ntoo many streaming connections, try again\n"
)


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections are joined on shutdown so that none is left behind.
    block_on_close = True
    max_connections = 1
    # handle_request() is called only once the socket is readable: it must never wait for another client.
    timeout = 0

    def server_activate(self) -> None:
        self._admitted = threading.BoundedSemaphore(self.max_connections)
        super().server_activate()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._admitted.acquire(blocking=False):
            _log.warning(
                "streaming connection refused: at streaming.max_connections", limit=self.max_connections
            )
            if not isinstance(request, ssl.SSLSocket):  # a TLS answer would need a handshake first
                with contextlib.suppress(OSError):
                    request.send(_BUSY, socket.MSG_DONTWAIT)
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._admitted.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._admitted.release()


class _ThreadingServerV6(_ThreadingServer):
    address_family = socket.AF_INET6


class StreamingServer:
    def __init__(
        self,
        address: str,
        port: int,
        cache: RequestCache,
        container_streams: ContainerStreams,
        port_forwarder: PortForwarder,
        idle_timeout: float,
        tls_cert: str = "",
        tls_key: str = "",
        max_connections: int = 256,
        head_timeout: float = HEAD_TIMEOUT,
    ) -> None:
        self._address = address
        self._port = port
        self._cache = cache
        self._container_streams = container_streams
        self._port_forwarder = port_forwarder
        self._idle_timeout = idle_timeout
        self._max_connections = max_connections
        self._head_timeout = head_timeout
        self._tls: ssl.SSLContext | None = None
        if tls_cert:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(tls_cert, tls_key)
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
        self._stop: Wakeup | None = None
        self._transports: set[Transport] = set()
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the streaming server is not started")
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        scheme = "https" if self._tls else "http"
        host = f"[{host}]" if ":" in str(host) else host
        return f"{scheme}://{host}:{port}"

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._transports)

    def start(self) -> None:
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                outer._handle(self.request)

        base = _ThreadingServerV6 if ":" in self._address else _ThreadingServer
        server_class = type("StreamingTCPServer", (base,), {"max_connections": self._max_connections})
        self._server = server_class((self._address, self._port), Handler)
        if self._tls is not None:
            # The TLS handshake happens on the connection's own thread, on its first read.
            self._server.socket = self._tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._stop = Wakeup()
        self._thread = threading.Thread(
            target=serve_until_stopped,
            args=(self._server, self._stop),
            name="streaming-server",
            daemon=True,
        )
        self._thread.start()
        _log.info("streaming server listening", url=self.base_url)

    def stop(self) -> None:
        if self._server is None:
            return
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            for transport in list(self._transports):
                transport.close()
        self._server.server_close()
        if self._stop is not None:
            self._stop.close()
        self._server = None

    def _handle(self, sock: socket.socket) -> None:
        transport = Transport(sock, self._idle_timeout)
        with self._lock:
            self._transports.add(transport)
        try:
            self._serve(transport)
        except (ConnectionClosed, ssl.SSLError, ValueError) as err:
            _log.debug("streaming connection ended", reason=str(err))
        except Exception:
            _log.exception("streaming connection failed")
        finally:
            transport.close()
            with self._lock:
                self._transports.discard(transport)

    def _serve(self, transport: Transport) -> None:
        # The protocol modules load at the first connection: an idle daemon that never streams does not
        # carry them (about 0.5 MiB).
        from adapters.streaming import portforward, remotecommand, websocket

        try:
            request = transport.read_request(self._head_timeout)
        except ValueError as err:
            transport.respond(400, "Bad Request", [], str(err).encode())
            return
        kind, _, token = request.path.strip("/").partition("/")
        if (
            request.method not in ("GET", "POST")
            or kind not in ("exec", "attach", "portforward")
            or not token
        ):
            transport.respond(404, "Not Found", [], b"404 page not found\n")
            return
        is_websocket = websocket.is_websocket_request(request)
        if not (is_websocket or _is_spdy_upgrade(request)):
            transport.respond(400, "Bad Request", [], b"streaming needs a SPDY/3.1 or websocket upgrade\n")
            return
        wanted = {"exec": ExecRequest, "attach": AttachRequest, "portforward": PortForwardRequest}[kind]
        cached = self._cache.consume(token)
        if cached is None or not isinstance(cached, wanted):
            transport.respond(404, "Not Found", [], b"404 page not found\n")
            return
        if isinstance(cached, PortForwardRequest):
            serve_pf: Any = portforward.serve_websocket if is_websocket else portforward.serve_spdy
            serve_pf(transport, request, cached, self._port_forwarder)
        else:
            serve_cmd = remotecommand.serve_websocket if is_websocket else remotecommand.serve_spdy
            serve_cmd(transport, request, cached, self._container_streams)


def _is_spdy_upgrade(request: HttpRequest) -> bool:
    upgrade = any(v.lower() == "spdy/3.1" for v in request.header_values("Upgrade"))
    return upgrade and any(v.lower() == "upgrade" for v in request.header_values("Connection"))

"""The streaming HTTP server: `/exec/<token>`, `/attach/<token>` and `/portforward/<token>`.

A token names a request the CRI handler validated; it is consumed when its URL is opened, so a URL works
once. Each connection gets its own thread; the upgrade (SPDY/3.1 or WebSocket) picks the wire protocol.
"""

import socket
import socketserver
import ssl
import threading
from typing import Any

import structlog

from adapters.streaming import portforward, remotecommand, websocket
from adapters.streaming.transport import ConnectionClosed, Transport
from domain.streaming import AttachRequest, ExecRequest, PortForwardRequest, RequestCache
from ports.streaming import ContainerStreams, PortForwarder

_log = structlog.get_logger("pycrio.streaming")


class _ThreadingServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    # Connections are joined on shutdown so that none is left behind.
    block_on_close = True


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
    ) -> None:
        self._address = address
        self._port = port
        self._cache = cache
        self._container_streams = container_streams
        self._port_forwarder = port_forwarder
        self._idle_timeout = idle_timeout
        self._tls: ssl.SSLContext | None = None
        if tls_cert:
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(tls_cert, tls_key)
        self._server: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None
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

        server_class = _ThreadingServerV6 if ":" in self._address else _ThreadingServer
        self._server = server_class((self._address, self._port), Handler)
        if self._tls is not None:
            # The TLS handshake happens on the connection's own thread, on its first read.
            self._server.socket = self._tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="streaming-server", daemon=True
        )
        self._thread.start()
        _log.info("streaming server listening", url=self.base_url)

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        with self._lock:
            for transport in list(self._transports):
                transport.close()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
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
        try:
            request = transport.read_request()
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
        wanted = {"exec": ExecRequest, "attach": AttachRequest, "portforward": PortForwardRequest}[kind]
        cached = self._cache.consume(token)
        if not isinstance(cached, wanted):
            transport.respond(404, "Not Found", [], b"404 page not found\n")
            return
        is_websocket = websocket.is_websocket_request(request)
        if not is_websocket and not any(v.lower() == "upgrade" for v in request.header_values("Connection")):
            transport.respond(400, "Bad Request", [], b"streaming needs a SPDY/3.1 or websocket upgrade\n")
            return
        if cached is None:
            return
        if isinstance(cached, PortForwardRequest):
            serve_pf: Any = portforward.serve_websocket if is_websocket else portforward.serve_spdy
            serve_pf(transport, request, cached, self._port_forwarder)
        else:
            serve_cmd = remotecommand.serve_websocket if is_websocket else remotecommand.serve_spdy
            serve_cmd(transport, request, cached, self._container_streams)

"""PortForward into a pod: connect to localhost:port inside the sandbox's network namespace.

A socket belongs to the network namespace of the thread that created it, so a short-lived thread enters
the namespace (setns), connects, and ends; the connected socket then works from any thread, and no thread
of the daemon is left in a pod's namespace. Python 3.11 has no os.setns, hence the libc call.
"""

import contextlib
import socket
import threading
from collections.abc import Callable

import structlog

from adapters.namespaces import linux
from adapters.readiness import wait_readable
from domain.errors import Unavailable
from ports.streaming import Cancellation, DuplexStream

_log = structlog.get_logger("pycrio.streaming.portforward")
# How often the copy loop checks whether the session was cancelled.
_TICK = 0.5
_CHUNK = 32 * 1024


def connect_in_netns(netns_path: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to 127.0.0.1:port (then [::1]:port) inside `netns_path` ("" = this namespace)."""
    result: list[socket.socket | BaseException] = []

    def enter_and_connect() -> None:
        try:
            if netns_path:
                linux.setns(netns_path, linux.CLONE_NEWNET)
            result.append(_connect_loopback(port, timeout))
        except BaseException as err:
            result.append(err)

    # The thread ends right after connecting, taking its namespace with it.
    worker = threading.Thread(target=enter_and_connect, name="netns-connect", daemon=True)
    worker.start()
    worker.join()
    outcome = result[0]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


def _connect_loopback(port: int, timeout: float) -> socket.socket:
    errors = []
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
        except OSError as err:
            sock.close()
            errors.append(f"{host}: {err.strerror or err}")
            continue
        sock.settimeout(None)
        return sock
    raise Unavailable(f"cannot connect to port {port}: {'; '.join(errors)}")


class NetnsPortForwarder:
    def __init__(self, netns_of: Callable[[str], str], connect_timeout: float = 10.0) -> None:
        self._netns_of = netns_of
        self._connect_timeout = connect_timeout

    def port_forward(self, sandbox_id: str, port: int, stream: DuplexStream, cancelled: Cancellation) -> None:
        sock = connect_in_netns(self._netns_of(sandbox_id), port, self._connect_timeout)
        upstream = threading.Thread(
            target=_client_to_port, args=(stream, sock), name="pf-upstream", daemon=True
        )
        upstream.start()
        try:
            _port_to_client(sock, stream, cancelled)
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        # The forward is over when the port's side ends; the upstream copier ends when the client's side
        # of the stream does (FIN, reset, or the connection closing), which the server sees to.


def _client_to_port(stream: DuplexStream, sock: socket.socket) -> None:
    try:
        while chunk := stream.read(_CHUNK):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)  # the client is done sending: pass the half-close on
    except OSError:
        pass


def _port_to_client(sock: socket.socket, stream: DuplexStream, cancelled: Cancellation) -> None:
    while not cancelled.is_set():
        if not wait_readable(sock, _TICK):
            continue
        try:
            chunk = sock.recv(_CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            with contextlib.suppress(OSError):
                stream.close()
            return
        try:
            stream.write(chunk)
        except OSError:
            return

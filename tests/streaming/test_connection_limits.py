"""The streaming server's own limits: connections served at once, and the deadline for a request head."""

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from adapters.readiness import wait_readable
from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.server import StreamingServer
from domain.streaming import ExecRequest, RequestCache, StreamingService
from tests.fakes.streaming import FakeStreamTargets, LocalProcessStreams
from tests.streaming_client import SpdyCommand, http_get, wait_until

MAX_CONNECTIONS = 4
HEAD_TIMEOUT = 1.0


@pytest.fixture
def limited(request: pytest.FixtureRequest) -> Iterator[tuple[StreamingServer, StreamingService]]:
    # Idle connections in the cap test must outlive the head deadline.
    head_timeout = getattr(request, "param", HEAD_TIMEOUT)
    cache = RequestCache(ttl=60, clock=time.monotonic)
    backend = LocalProcessStreams()
    targets = FakeStreamTargets()
    targets.containers["c"] = backend.start_container("c", ["sleep", "100000"])
    server = StreamingServer(
        "127.0.0.1",
        0,
        cache,
        backend,
        NetnsPortForwarder(targets.sandbox_netns),
        idle_timeout=60.0,
        max_connections=MAX_CONNECTIONS,
        head_timeout=head_timeout,
    )
    server.start()
    yield server, StreamingService(cache, targets, lambda: server.base_url)
    server.stop()
    backend.stop_all()


def _connect(server: StreamingServer) -> socket.socket:
    parts = urlsplit(server.base_url)
    return socket.create_connection((parts.hostname or "", parts.port or 0), timeout=30)


def _closed_by_server(sock: socket.socket) -> bool:
    try:
        return wait_readable(sock, 0.2) and sock.recv(4096) == b""
    except ConnectionResetError:
        return True


def test_a_trickled_request_head_is_cut_at_the_head_deadline(
    limited: tuple[StreamingServer, StreamingService],
) -> None:
    server, _ = limited
    with _connect(server) as sock:
        sock.sendall(b"GET /exec/x HTTP/1.1\r\n")
        # One byte every 0.2 s keeps an idle timer reset forever; the head deadline is 1 s in all.
        for _ in range(100):
            try:
                sock.send(b"X")
            except (BrokenPipeError, ConnectionResetError):
                break
            if _closed_by_server(sock):
                break
        else:
            pytest.fail("a head trickled for 20 s was never cut")
    assert wait_until(lambda: server.open_connections == 0)


@pytest.mark.parametrize("limited", [60.0], indirect=True)
def test_connections_past_the_cap_are_answered_503_without_a_thread(
    limited: tuple[StreamingServer, StreamingService],
) -> None:
    server, service = limited
    idle = [_connect(server) for _ in range(MAX_CONNECTIONS)]
    try:
        assert wait_until(lambda: server.open_connections == MAX_CONNECTIONS)
        with _connect(server) as extra:
            answer = extra.recv(4096)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert server.open_connections == MAX_CONNECTIONS
        assert http_get(f"{server.base_url}/metrics")[0] == 503
    finally:
        for sock in idle:
            sock.close()
    # Once the idle ones are gone, new connections are served again.
    assert wait_until(lambda: server.open_connections == 0)
    url = service.url_for(ExecRequest("c", ("true",), stdout=True))
    SpdyCommand(url, stdin=False, stdout=True, stderr=False, tty=False).wait()

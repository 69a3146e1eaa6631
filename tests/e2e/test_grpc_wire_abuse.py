"""Clients that break the gRPC wire protocol on the CRI socket: garbage instead of HTTP/2, a length prefix of
4 GiB, requests that stop half-way, connections that never send. Each is refused or left waiting without a
thread of the daemon's, and the daemon keeps serving well-behaved clients."""

import os
import select
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.grpc_raw import (
    DATA,
    HEADERS,
    frame,
    grpc_message,
    open_connection,
    read_answer,
    read_until_closed,
    start,
)
from tests.streaming_client import wait_until

pytestmark = pytest.mark.root

VERSION = "/runtime.v1.RuntimeService/Version"
MAX_CONNECTIONS = 16


@pytest.fixture
def capped(tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(tmp_path / "pycrio", [f"grpc.max_connections={MAX_CONNECTIONS}"]).start()
    yield running
    running.stop()


def assert_serving(daemon: Daemon) -> None:
    runtime = daemon.client.runtime
    assert runtime.Version(pb.VersionRequest(), timeout=30).runtime_name == "pycrio"
    runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30)
    runtime.ListContainers(pb.ListContainersRequest(), timeout=30)


@pytest.mark.parametrize("garbage", [os.urandom(4096), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"\0" * 100_000])
def test_garbage_instead_of_http2_is_dropped(daemon: Daemon, garbage: bytes) -> None:
    with open_connection(daemon.socket) as sock:
        sock.sendall(garbage)
        answer = read_until_closed(sock)
    assert len(answer) < 4096  # at most the server's SETTINGS and GOAWAY, then the connection is closed
    assert_serving(daemon)


def test_a_4_gib_length_prefix_is_resource_exhausted_at_once(daemon: Daemon) -> None:
    with open_connection(daemon.socket) as sock:
        start(sock, VERSION)
        sock.sendall(frame(DATA, 0, 1, grpc_message(0xFFFFFFFF, b"x" * 100)))
        answer = read_answer(sock)
    trailers = [payload for kind, _, stream, payload in answer if kind == HEADERS and stream == 1]
    # grpc core writes these trailers as plain HPACK literals: the status is readable as bytes.
    assert any(b"grpc-status\x018" in block for block in trailers), answer  # 8: RESOURCE_EXHAUSTED
    assert_serving(daemon)


def test_requests_stalled_half_way_hold_no_thread(daemon: Daemon) -> None:
    """More stalled requests of a poll (ListContainers) than the polls have threads of their own
    (grpc.max_poll_workers) and than grpc.max_workers: grpcio gives each call a thread when its headers
    arrive, which then waits for the rest of the message. The polls' pool overflows into the main one
    (adapters/cri/poll_pool.py), so a well-behaved call is still served."""
    stalled: list[socket.socket] = []
    try:
        for _ in range(80):
            sock = open_connection(daemon.socket)
            stalled.append(sock)
            start(sock, "/runtime.v1.RuntimeService/ListContainers")
            sock.sendall(frame(DATA, 0, 1, grpc_message(1000, b"\x0a")))  # 1 of 1000 bytes
        assert_serving(daemon)
    finally:
        for sock in stalled:
            sock.close()
    assert_serving(daemon)


def test_connections_past_the_cap_are_closed_and_the_rest_still_served(capped: Daemon) -> None:
    """Connections that never send cost the daemon a file each: past grpc.max_connections they are closed
    as they arrive, so a client cannot run it out of files."""
    assert_serving(capped)  # the test's client connects first: it holds one of the admitted connections
    silent = [open_connection(capped.socket) for _ in range(MAX_CONNECTIONS * 3)]
    try:
        # The test's own client holds one connection; at most MAX_CONNECTIONS - 1 silent ones are admitted.
        assert wait_until(lambda: len(closed_by_server(silent)) >= MAX_CONNECTIONS * 2 + 1, interval=0.2)
    finally:
        for sock in silent:
            sock.close()
    assert_serving(capped)


def closed_by_server(sockets: list[socket.socket]) -> list[socket.socket]:
    """The sockets the server has closed (end of file, or reset, waiting to be read)."""
    readable, _, _ = select.select(sockets, [], [], 0)
    closed = []
    for sock in readable:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":
                closed.append(sock)
        except ConnectionResetError:
            closed.append(sock)
    return closed


def test_many_silent_connections_leave_the_daemon_serving(daemon: Daemon) -> None:
    silent = [open_connection(daemon.socket) for _ in range(300)]
    try:
        assert_serving(daemon)
    finally:
        for sock in silent:
            sock.close()
    assert_serving(daemon)

"""Streaming server options: TLS, and idle streams closed after `streaming.idle_timeout`."""

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.server import StreamingServer
from domain.streaming import ExecRequest, RequestCache, StreamingService
from tests.fakes.streaming import FakeStreamTargets, LocalProcessStreams
from tests.streaming_client import SpdyCommand, WebSocketCommand, wait_until


def _server(
    tmp_path: Path, idle_timeout: float, tls: bool
) -> tuple[StreamingServer, StreamingService, LocalProcessStreams]:
    cert = key = ""
    if tls:
        cert, key = str(tmp_path / "cert.pem"), str(tmp_path / "key.pem")
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
                *("-subj", "/CN=localhost", "-keyout", key, "-out", cert),
            ],
            check=True,
            capture_output=True,
        )
    cache = RequestCache(ttl=60, clock=time.monotonic)
    backend = LocalProcessStreams()
    targets = FakeStreamTargets()
    targets.containers["c"] = backend.start_container("c", ["sleep", "100000"])
    server = StreamingServer(
        "127.0.0.1", 0, cache, backend, NetnsPortForwarder(targets.sandbox_netns), idle_timeout, cert, key
    )
    server.start()
    return server, StreamingService(cache, targets, lambda: server.base_url), backend


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[StreamingServer, StreamingService]]:
    server, service, backend = _server(tmp_path, 60, tls=True)
    yield server, service
    server.stop()
    backend.stop_all()


@pytest.fixture
def idle_server(tmp_path: Path) -> Iterator[tuple[StreamingServer, StreamingService, LocalProcessStreams]]:
    server, service, backend = _server(tmp_path, 1.5, tls=False)
    yield server, service, backend
    server.stop()
    backend.stop_all()


def test_tls_serves_https_urls_over_spdy_and_websocket(
    tls_server: tuple[StreamingServer, StreamingService],
) -> None:
    server, service = tls_server
    assert server.base_url.startswith("https://127.0.0.1:")
    request = ExecRequest("c", ("sh", "-c", "cat; exit 6"), stdin=True, stdout=True)
    spdy = SpdyCommand(service.url_for(request), stdin=True, stdout=True, stderr=False, tty=False)
    spdy.send(b"over tls")
    spdy.close_stdin()
    result = spdy.wait()
    assert (result.stdout, result.exit_code) == (b"over tls", 6)
    ws = WebSocketCommand(service.url_for(request))
    ws.send(b"again")
    ws.close_stdin()
    result = ws.wait()
    assert (result.stdout, result.exit_code) == (b"again", 6)


def test_an_idle_stream_is_closed_and_its_process_killed(
    idle_server: tuple[StreamingServer, StreamingService, LocalProcessStreams],
) -> None:
    server, service, backend = idle_server
    request = ExecRequest("c", ("sh", "-c", "echo up; exec sleep 100000"), stdin=True, stdout=True)
    command = SpdyCommand(service.url_for(request), stdin=True, stdout=True, stderr=False, tty=False)
    assert command.stdout is not None
    command.stdout.read_until(lambda out: b"up" in out)
    assert command.client.closed.wait(30), "the idle connection was not closed"
    command.client.close()
    assert wait_until(lambda: server.open_connections == 0)
    pid = backend.exec_pids[-1]
    assert wait_until(lambda: not Path(f"/proc/{pid}").exists() or _zombie(pid))


def test_traffic_keeps_a_stream_open_past_the_idle_timeout(
    idle_server: tuple[StreamingServer, StreamingService, LocalProcessStreams],
) -> None:
    _, service, _ = idle_server
    request = ExecRequest("c", ("cat",), stdin=True, stdout=True)
    command = SpdyCommand(service.url_for(request), stdin=True, stdout=True, stderr=False, tty=False)
    assert command.stdout is not None
    # Input every 0.2 s for over 2 s: never idle for the 1.5 s timeout, so the stream must survive.
    for i in range(12):
        command.send(b"%d," % i)
        command.stdout.read_until(lambda out, i=i: out.endswith(b"%d," % i))
        threading.Event().wait(0.2)
    assert not command.client.closed.is_set()
    command.close_stdin()
    assert command.wait().stdout == b"".join(b"%d," % i for i in range(12))


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True

"""A client that vanishes midway leaves no process, thread or socket behind."""

import os
import threading

import pytest

from domain.streaming import ExecRequest, PortForwardRequest
from tests.streaming.conftest import Streaming
from tests.streaming.netns import PodNetns
from tests.streaming.test_port_forward import _wait_listening
from tests.streaming_client import SpdyCommand, SpdyPortForward, WebSocketCommand, wait_until


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between listing and reading
        return False


def _assert_nothing_left(streaming: Streaming, threads: int, fds: int) -> None:
    assert wait_until(lambda: streaming.server.open_connections == 0), "a connection is still open"
    assert wait_until(lambda: threading.active_count() <= threads), [t.name for t in threading.enumerate()]
    assert wait_until(lambda: _open_fds() <= fds), os.listdir("/proc/self/fd")


@pytest.mark.parametrize("transport", ["spdy", "websocket"])
@pytest.mark.parametrize("tty", [False, True])
def test_exec_process_is_killed_when_the_client_drops(
    streaming: Streaming, transport: str, tty: bool
) -> None:
    threads, fds = threading.active_count(), _open_fds()
    started = len(streaming.backend.exec_pids)
    request = ExecRequest(
        "exec-target", ("sh", "-c", "echo up; sleep 100000"), tty=tty, stdin=True, stdout=True
    )
    url = streaming.url(request)
    if transport == "spdy":
        spdy = SpdyCommand(url, stdin=True, stdout=True, stderr=False, tty=tty)
        assert spdy.stdout is not None
        spdy.stdout.read_until(lambda out: b"up" in out)
        spdy.client.abort()
    else:
        ws = WebSocketCommand(url)
        ws.client.read_until(1, lambda out: b"up" in out)
        ws.client.close()
    pid = streaming.backend.exec_pids[started]
    assert wait_until(lambda: not _alive(pid)), f"exec process {pid} survived its client"
    _assert_nothing_left(streaming, threads, fds)


@pytest.mark.root
def test_port_forward_cleans_up_when_the_client_drops(streaming: Streaming) -> None:
    netns = PodNetns().start()
    streaming.targets.sandboxes["pod-drop"] = netns.path
    try:
        _wait_listening(netns)
        threads, fds = threading.active_count(), _open_fds()
        forward = SpdyPortForward(streaming.url(PortForwardRequest("pod-drop")))
        data, _ = forward.connect(netns.echo_port)
        data.write(b"ping")
        data.read_until(lambda got: got == b"PING")
        forward.client.abort()
        _assert_nothing_left(streaming, threads, fds)
    finally:
        del streaming.targets.sandboxes["pod-drop"]
        netns.stop()

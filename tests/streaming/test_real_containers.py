"""The streaming server end to end into real runc containers under conmon (root): exec over SPDY and
WebSocket, a terminal resize, attach."""

import os
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.server import StreamingServer
from domain.streaming import AttachRequest, ExecRequest, RequestCache, StreamingService
from ports.streaming_targets import StreamContainer
from tests.fakes.streaming import FakeStreamTargets
from tests.streaming.real_container import (
    RealContainer,
    RealContainerStreams,
    build_rootfs,
    processes_matching,
)
from tests.streaming_client import SpdyCommand, WebSocketCommand, wait_until

pytestmark = pytest.mark.root


@dataclass
class Node:
    service: StreamingService
    start: object
    sleeper: str


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, orphan_reaper: None) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("pcstream-node")
    build_rootfs(work / "rootfs")
    backend, targets = RealContainerStreams(), FakeStreamTargets()

    def start(args: list[str], stdin: bool = False, stdin_once: bool = False, tty: bool = False) -> str:
        container = RealContainer(work, work / "rootfs", args, stdin, stdin_once, tty)
        backend.containers[container.id] = container
        container.start()
        targets.containers[container.id] = StreamContainer(container.id, stdin, stdin_once, tty)
        return container.id

    cache = RequestCache(60, time.monotonic)
    server = StreamingServer("127.0.0.1", 0, cache, backend, NetnsPortForwarder(targets.sandbox_netns), 60)
    server.start()
    try:
        sleeper = start(["sleep", "100000"])
        yield Node(StreamingService(cache, targets, lambda: server.base_url), start, sleeper)
    finally:
        server.stop()
        for container in backend.containers.values():
            container.stop()


def test_exec_over_spdy_with_stdin_and_exit_code(node: Node) -> None:
    request = ExecRequest(
        node.sleeper, ("sh", "-c", "tr a-z A-Z; hostname >&2; exit 4"), stdin=True, stdout=True, stderr=True
    )
    command = SpdyCommand(node.service.url_for(request), stdin=True, stdout=True, stderr=True, tty=False)
    command.send(b"inside the container\n")
    command.close_stdin()
    result = command.wait()
    assert result.stdout == b"INSIDE THE CONTAINER\n"
    assert result.stderr == b"pcstream\n"  # the container's own UTS namespace
    assert result.exit_code == 4


def test_exec_tty_over_websocket_honours_resize(node: Node) -> None:
    request = ExecRequest(
        node.sleeper, ("sh", "-c", "while read l; do stty size; done"), tty=True, stdin=True, stdout=True
    )
    command = WebSocketCommand(node.service.url_for(request), ["v5.channel.k8s.io"])
    command.resize(132, 43)
    for attempt in range(1, 101):
        command.send(b"go\n")
        out = command.client.read_until(1, lambda b, n=attempt: b.count(b"\n") >= 2 * n)
        if b"43 132" in out:
            break
    assert b"43 132" in command.client.channel(1)
    command.send(b"\x04")
    assert command.wait().exit_code == 0


def test_attach_to_a_container_over_spdy(node: Node) -> None:
    assert callable(node.start)
    container_id = node.start(
        ["sh", "-c", "while read l; do echo got:$l; done; echo closed"], stdin=True, stdin_once=True
    )
    request = AttachRequest(container_id, stdin=True, stdout=True, stderr=True)
    command = SpdyCommand(node.service.url_for(request), stdin=True, stdout=True, stderr=True, tty=False)
    command.send_lines_until_echoed(b"got:")
    command.close_stdin()
    result = command.wait()
    assert result.stdout.endswith(b"closed\n")
    assert result.exit_code == 0


@pytest.mark.parametrize("tty", [False, True])
def test_a_client_that_drops_leaves_no_process_thread_or_socket(node: Node, tty: bool) -> None:
    threads, fds = threading.active_count(), len(os.listdir("/proc/self/fd"))
    marker = f"{secrets.randbelow(10**6) + 10**6}"
    request = ExecRequest(
        node.sleeper, ("sh", "-c", f"echo up; sleep {marker}"), tty=tty, stdin=True, stdout=True
    )
    command = SpdyCommand(node.service.url_for(request), stdin=True, stdout=True, stderr=False, tty=tty)
    assert command.stdout is not None
    command.stdout.read_until(lambda out: b"up" in out)
    command.client.abort()
    assert wait_until(lambda: not processes_matching(marker)), processes_matching(marker)
    assert wait_until(lambda: threading.active_count() <= threads), [t.name for t in threading.enumerate()]
    assert wait_until(lambda: len(os.listdir("/proc/self/fd")) <= fds)

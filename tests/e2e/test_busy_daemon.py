"""Calls that wait cannot starve the kubelet's polls, which run on threads of their own (max_poll_workers).

A node draining its pods (StopContainer waits out each grace period) or pulling from a registry that has
stalled holds one thread per call for as long as the call waits. Before, those calls could take every
thread, and the Status and relist calls the kubelet's node health depends on queued behind them until the
kubelet's deadline passed.
"""

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.streaming_client import wait_until

pytestmark = pytest.mark.root

# The main pool: max_workers threads, and max_streams more that unary calls use while no stream does.
WORKERS = 2 + 1
PULLS = 3 * WORKERS


class SilentRegistry:
    """Accepts connections on 127.0.0.1 and never answers: every pull from it waits (the read timeout is
    30 s or more), holding its thread."""

    def __init__(self) -> None:
        self._server = socket.socket()
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(256)
        self.host = f"127.0.0.1:{self._server.getsockname()[1]}"
        self.connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:
                return
            self.connections.append(connection)

    def close(self) -> None:
        self._server.close()
        for connection in self.connections:
            connection.close()


@pytest.fixture
def registry() -> Iterator[SilentRegistry]:
    silent = SilentRegistry()
    yield silent
    silent.close()


def test_polls_are_answered_while_waiting_calls_hold_every_worker(
    tmp_path: Path, registry: SilentRegistry
) -> None:
    settings = ["grpc.max_workers=2", "grpc.max_streams=1", "grpc.max_poll_workers=2"]
    daemon = Daemon(tmp_path / "pycrio", settings).start()
    pulls: list[grpc.Future] = []
    try:
        image = daemon.client.image
        for number in range(PULLS):
            request = pb.PullImageRequest(image=pb.ImageSpec(image=f"{registry.host}/stalled{number}:1"))
            pulls.append(image.PullImage.future(request, timeout=300))
        # Every worker is in a pull that waits on the registry (the rest of the pulls queue behind them).
        assert wait_until(lambda: len(registry.connections) >= WORKERS, timeout=60)
        runtime = daemon.client.runtime
        # A deadline well inside the registry's read timeout: queued behind the pulls, these would miss it.
        assert runtime.Version(pb.VersionRequest(), timeout=10).runtime_name == "pycrio"
        conditions = runtime.Status(pb.StatusRequest(), timeout=10).status.conditions
        assert {condition.type for condition in conditions} >= {"RuntimeReady", "NetworkReady"}
        assert not runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items
        assert not runtime.ListContainers(pb.ListContainersRequest(), timeout=10).containers
        assert not image.ImageStatus(
            pb.ImageStatusRequest(image=pb.ImageSpec(image="none:1")), timeout=10
        ).image.id
        assert not image.ListImages(pb.ListImagesRequest(), timeout=10).images
        assert not any(pull.done() for pull in pulls)  # the pulls still wait: the polls did not need them
    finally:
        for pull in pulls:
            pull.cancel()
        daemon.stop()

"""One streaming server per session, with local-process containers and the real netns port forwarder."""

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.process import runner
from adapters.process.subreaper import become_subreaper
from adapters.streaming.netns_port_forwarder import NetnsPortForwarder
from adapters.streaming.server import StreamingServer
from domain.streaming import RequestCache, StreamingService, StreamRequest
from tests.fakes.streaming import FakeStreamTargets, LocalProcessStreams


class SteppingClock:
    """Monotonic time plus whatever a test skips ahead."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += seconds


@dataclass
class Streaming:
    server: StreamingServer
    service: StreamingService
    backend: LocalProcessStreams
    targets: FakeStreamTargets
    cache: RequestCache
    clock: SteppingClock

    def url(self, request: StreamRequest) -> str:
        return self.service.url_for(request)


@pytest.fixture(scope="session")
def streaming() -> Iterator[Streaming]:
    clock = SteppingClock()
    cache = RequestCache(ttl=60.0, clock=clock)
    backend = LocalProcessStreams()
    targets = FakeStreamTargets()
    # A target for exec: the fake runs exec commands as local processes beside it.
    targets.containers["exec-target"] = backend.start_container("exec-target", ["sleep", "100000"])
    server = StreamingServer(
        "127.0.0.1", 0, cache, backend, NetnsPortForwarder(targets.sandbox_netns), idle_timeout=60.0
    )
    server.start()
    service = StreamingService(cache, targets, lambda: server.base_url)
    yield Streaming(server, service, backend, targets, cache, clock)
    server.stop()
    backend.stop_all()


@pytest.fixture
def baseline_threads() -> int:
    return threading.active_count()


@pytest.fixture(scope="session")
def orphan_reaper() -> Iterator[None]:
    """Like the daemon: adopt and reap what the runtimes and conmon orphan (a tty exec's process is waited
    for as an adopted child)."""
    become_subreaper()
    reaper = runner.OrphanReaper(gap=0.2)
    reaper.start()
    yield
    reaper.stop()

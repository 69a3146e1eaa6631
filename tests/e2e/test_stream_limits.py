"""Long-lived streams against the real daemon: open GetContainerEvents streams never take the threads that
unary RPCs need, and past `grpc.max_streams` a stream is refused rather than queued."""

from collections.abc import Iterator

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.streaming_client import wait_until

MAX_STREAMS = 64  # the default of grpc.max_streams (and of grpc.max_workers)
EXTRA = 8


@pytest.fixture
def streams(daemon: Daemon) -> Iterator[list[grpc.Future]]:
    opened: list[grpc.Future] = []
    yield opened
    for stream in opened:
        stream.cancel()


def test_idle_event_streams_leave_version_and_listings_served(
    daemon: Daemon, streams: list[grpc.Future]
) -> None:
    runtime = daemon.client.runtime
    for _ in range(MAX_STREAMS):
        streams.append(runtime.GetContainerEvents(pb.GetEventsRequest()))
    for stream in streams:
        stream.initial_metadata()  # the server subscribed it: it holds a thread from now on
    extra = [runtime.GetContainerEvents(pb.GetEventsRequest()) for _ in range(EXTRA)]
    streams.extend(extra)
    # With every stream thread taken, unary RPCs still get threads of their own.
    assert runtime.Version(pb.VersionRequest(), timeout=30).runtime_name == "pycrio"
    runtime.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30)
    for stream in extra:
        with pytest.raises(grpc.RpcError) as refused:
            next(stream)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "grpc.max_streams" in (refused.value.details() or "")
    # A slot is given back once its client goes (the server notices within its poll interval).
    streams[0].cancel()

    def reopened() -> bool:
        stream = runtime.GetContainerEvents(pb.GetEventsRequest())
        streams.append(stream)
        stream.initial_metadata()
        return not stream.done()

    assert wait_until(reopened, interval=0.2)

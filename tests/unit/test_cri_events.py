"""GetContainerEvents over a real gRPC server, fed by the publisher with a fake status source."""

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.cri.events import ContainerEventHandlers, CriEventPublisher
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from domain.events import Broadcaster, ContainerEventType
from tests.cri_client import CriClient, connect
from tests.fakes.clock import FakeClock
from tests.fakes.cri_status import FakeCriStatusSource


@dataclass
class Events:
    broadcaster: Broadcaster[pb.ContainerEventResponse]
    statuses: FakeCriStatusSource
    publisher: CriEventPublisher
    client: CriClient

    def subscribe(self) -> Any:
        stream = self.client.runtime.GetContainerEvents(pb.GetEventsRequest())
        stream.initial_metadata()  # returns once the server has subscribed
        return stream


@pytest.fixture
def events(tmp_path: Path) -> Iterator[Events]:
    broadcaster: Broadcaster[pb.ContainerEventResponse] = Broadcaster(capacity=8)
    statuses = FakeCriStatusSource()
    publisher = CriEventPublisher(broadcaster, statuses, FakeClock())
    handlers = ContainerEventHandlers(broadcaster)
    server = CriServer(tmp_path / "cri.sock", 0o660, runtime_service([handlers]), image_service([]), 8)
    server.start()
    client = connect(tmp_path / "cri.sock")
    yield Events(broadcaster, statuses, publisher, client)
    client.close()
    broadcaster.close()
    server.stop(1)


LIFECYCLE = [
    (ContainerEventType.CREATED, pb.CONTAINER_CREATED, pb.CONTAINER_CREATED_EVENT),
    (ContainerEventType.STARTED, pb.CONTAINER_RUNNING, pb.CONTAINER_STARTED_EVENT),
    (ContainerEventType.STOPPED, pb.CONTAINER_EXITED, pb.CONTAINER_STOPPED_EVENT),
]


def test_two_clients_see_the_whole_lifecycle_in_order_with_statuses(events: Events) -> None:
    events.statuses.add_pod("pod1", name="web", uid="uid-web")
    first, second = events.subscribe(), events.subscribe()
    for kind, state, _ in LIFECYCLE:
        events.statuses.set_container("pod1", "ctr1", state)
        events.publisher.container_event("ctr1", "pod1", kind)
    events.statuses.containers["pod1"] = []
    events.publisher.container_event("ctr1", "pod1", ContainerEventType.DELETED)

    for stream in (first, second):
        got = [next(stream) for _ in range(4)]
        assert [e.container_event_type for e in got] == [
            pb.CONTAINER_CREATED_EVENT,
            pb.CONTAINER_STARTED_EVENT,
            pb.CONTAINER_STOPPED_EVENT,
            pb.CONTAINER_DELETED_EVENT,
        ]
        assert {e.container_id for e in got} == {"ctr1"}
        assert all(e.pod_sandbox_status.metadata.uid == "uid-web" for e in got)
        assert [e.containers_statuses[0].state for e in got[:3]] == [s for _, s, _ in LIFECYCLE]
        assert list(got[3].containers_statuses) == []
        assert all(e.created_at > 0 for e in got)
        stream.cancel()


def test_a_client_that_does_not_read_never_blocks_the_publisher(events: Events) -> None:
    events.statuses.add_pod("pod1")
    events.statuses.set_container("pod1", "ctr1", pb.CONTAINER_RUNNING)
    idle = events.subscribe()
    published = 0
    while events.broadcaster.dropped == 0 and published < 1_000_000:
        events.publisher.container_event("ctr1", "pod1", ContainerEventType.STARTED)
        published += 1
    # The idle client's transport window and then its queue filled; publishing went on regardless.
    assert events.broadcaster.dropped == 1
    assert published < 1_000_000
    idle.cancel()


def test_nobody_listening_costs_no_status_lookups(events: Events) -> None:
    events.statuses.add_pod("pod1")
    events.publisher.container_event("ctr1", "pod1", ContainerEventType.CREATED)
    assert events.statuses.lookups == 0


def test_events_of_unknown_pods_are_skipped(events: Events) -> None:
    events.statuses.add_pod("pod1")
    stream = events.subscribe()
    events.publisher.container_event("ctr9", "gone", ContainerEventType.STOPPED)
    events.publisher.container_event("ctr1", "pod1", ContainerEventType.STARTED)
    assert next(stream).container_id == "ctr1"
    stream.cancel()


def test_a_cancelled_client_unsubscribes(events: Events) -> None:
    stream = events.subscribe()
    assert events.broadcaster.has_subscribers
    stream.cancel()
    deadline = time.monotonic() + 30
    while events.broadcaster.has_subscribers and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not events.broadcaster.has_subscribers


def test_shutdown_ends_the_stream(events: Events) -> None:
    stream = events.subscribe()
    events.broadcaster.close()
    assert list(stream) == []

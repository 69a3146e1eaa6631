"""The ContainerEventSink contract: the recording fake, and the CRI publisher read through a subscription
(what a GetContainerEvents client gets)."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from adapters.cri.events import CRI_EVENT_TYPES, CriEventPublisher
from adapters.cri.generated import api_pb2 as pb
from domain.events import Broadcaster
from ports.container_events import ContainerEventSink, ContainerEventType
from tests.fakes.clock import FakeClock
from tests.fakes.container_events import RecordingEventSink
from tests.fakes.cri_status import FakeCriStatusSource

E = ContainerEventType
_KINDS = {code: kind for kind, code in CRI_EVENT_TYPES.items()}


@dataclass
class Sink:
    sink: ContainerEventSink
    received: Callable[[], list[tuple[str, str, ContainerEventType]]]


@pytest.fixture(params=["fake", "cri"])
def sink(request: pytest.FixtureRequest) -> Iterator[Sink]:
    if request.param == "fake":
        fake = RecordingEventSink()
        yield Sink(fake, lambda: list(fake.events))
        return
    statuses = FakeCriStatusSource()
    for pod in ("p1", "p2"):
        statuses.add_pod(pod)
    broadcaster: Broadcaster[pb.ContainerEventResponse] = Broadcaster(capacity=100)
    with broadcaster.subscribe() as subscription:
        got: list[tuple[str, str, ContainerEventType]] = []

        def received() -> list[tuple[str, str, ContainerEventType]]:
            while (event := subscription.next(0)) is not None:
                kind = _KINDS[event.container_event_type]
                got.append((event.container_id, event.pod_sandbox_status.id, kind))
            return list(got)

        yield Sink(CriEventPublisher(broadcaster, statuses, FakeClock()), received)


def test_events_arrive_in_the_order_they_were_reported(sink: Sink) -> None:
    for kind in (E.CREATED, E.STARTED, E.STOPPED):
        sink.sink.container_event("c1", "p1", kind)
    sink.sink.container_event("p2", "p2", E.CREATED)
    assert sink.received() == [("c1", "p1", E.CREATED), ("c1", "p1", E.STARTED), ("c1", "p1", E.STOPPED),
                               ("p2", "p2", E.CREATED)]  # fmt: skip


def test_a_prepared_event_is_reported_only_when_sent(sink: Sink) -> None:
    send = sink.sink.prepare("c1", "p1", E.DELETED)
    assert sink.received() == []
    sink.sink.container_event("c2", "p1", E.CREATED)
    send()
    assert sink.received() == [("c2", "p1", E.CREATED), ("c1", "p1", E.DELETED)]

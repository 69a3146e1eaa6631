"""GetContainerEvents, and the publisher that turns lifecycle changes into CRI events.

Each event carries the pod sandbox status and every container status of the pod at the time of the
change (what the kubelet's evented PLEG caches). Those are CRI messages, so the narrow port that supplies
them, `CriStatusSource`, lives here: the pods and containers handlers already build exactly these messages
for PodSandboxStatus and ContainerStatus.
"""

from collections.abc import Callable, Iterator
from typing import Protocol

import grpc
import structlog

from adapters.cri.generated import api_pb2 as pb
from domain.errors import NotFound
from domain.events import Broadcaster, ContainerEventType
from ports.clock import Clock

_log = structlog.get_logger("pycrio.events")

CRI_EVENT_TYPES = {
    ContainerEventType.CREATED: pb.CONTAINER_CREATED_EVENT,
    ContainerEventType.STARTED: pb.CONTAINER_STARTED_EVENT,
    ContainerEventType.STOPPED: pb.CONTAINER_STOPPED_EVENT,
    ContainerEventType.DELETED: pb.CONTAINER_DELETED_EVENT,
}


class CriStatusSource(Protocol):
    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        """As PodSandboxStatus would answer; raises NotFound for an unknown pod."""
        ...

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        """As ContainerStatus would answer, for every container of the pod."""
        ...


class CriEventPublisher:
    """The ContainerEventSink behind the services' ledger. Cheap when nobody listens: no status is built."""

    def __init__(
        self, broadcaster: Broadcaster[pb.ContainerEventResponse], statuses: CriStatusSource, clock: Clock
    ) -> None:
        self._broadcaster = broadcaster
        self._statuses = statuses
        self._clock = clock

    def container_event(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        self._send(self._event(container_id, pod_id, kind))

    def prepare(self, container_id: str, pod_id: str, kind: ContainerEventType) -> Callable[[], None]:
        event = self._event(container_id, pod_id, kind)
        return lambda: self._send(event)

    def _event(
        self, container_id: str, pod_id: str, kind: ContainerEventType
    ) -> pb.ContainerEventResponse | None:
        """The event with the statuses as they are now; None when nobody listens or the pod is unknown."""
        if not self._broadcaster.has_subscribers:
            return None
        created_at = self._clock.now_ns()
        try:
            pod_status = self._statuses.pod_sandbox_status(pod_id)
            container_statuses = self._statuses.container_statuses(pod_id)
        except NotFound:
            # The kubelet cannot place an event without its pod; it relists soon anyway.
            _log.info("event without pod skipped", container=container_id, pod=pod_id, kind=kind.value)
            return None
        except Exception:
            _log.exception("building event statuses failed", container=container_id, kind=kind.value)
            return None
        return pb.ContainerEventResponse(
            container_id=container_id,
            container_event_type=CRI_EVENT_TYPES[kind],
            created_at=created_at,
            pod_sandbox_status=pod_status,
            containers_statuses=container_statuses,
        )

    def _send(self, event: pb.ContainerEventResponse | None) -> None:
        if event is not None:
            self._broadcaster.publish(event)


class ContainerEventHandlers:
    def __init__(self, broadcaster: Broadcaster[pb.ContainerEventResponse]) -> None:
        self._broadcaster = broadcaster

    def GetContainerEvents(
        self, request: pb.GetEventsRequest, context: grpc.ServicerContext
    ) -> Iterator[pb.ContainerEventResponse]:
        with self._broadcaster.subscribe() as subscription:
            # A client that goes away (or a deadline) ends the RPC, and gRPC calls back: closing the
            # subscription wakes the wait below, which therefore needs no timeout.
            if not context.add_callback(subscription.close):
                return
            # Headers go out once subscribed: a client that waits for them misses no later event.
            context.send_initial_metadata(())
            while context.is_active() and not subscription.closed:
                event = subscription.next()
                if event is not None:
                    yield event


class EventStreams:
    """Ends every GetContainerEvents stream at shutdown, so the server need not wait out its grace period."""

    def __init__(self, broadcaster: Broadcaster[pb.ContainerEventResponse]) -> None:
        self._broadcaster = broadcaster

    def start(self) -> None:
        pass

    def stop(self) -> None:
        self._broadcaster.close()

"""Container lifecycle events from the container handlers and from conmon's exit files.

`ContainerLifecycleEvents` wraps the container handlers: CREATED after CreateContainer, STARTED after
StartContainer, DELETED after RemoveContainer. STOPPED comes only from `ContainerExits`, called by the
exit-file watcher for every exit (StopContainer's and the ones nobody caused). `LifecycleLedger` keeps each
container's events single and in order although two threads report them: a command that exits at once can
have its exit noticed before StartContainer has returned.
"""

import threading
from typing import Any

import grpc
import structlog

from adapters.cri.containers import ContainerHandlers
from adapters.cri.events import CriEventPublisher
from adapters.cri.generated import api_pb2 as pb
from domain.containers import REASON_OOM_KILLED, ContainerFilter, ContainerService, ContainerState
from domain.errors import NotFound
from domain.events import ContainerEventType
from ports.metrics import RuntimeMetrics

_log = structlog.get_logger("pycrio.events")


class LifecycleLedger:
    def __init__(self, publisher: CriEventPublisher) -> None:
        self._publisher = publisher
        self._published: dict[str, set[ContainerEventType]] = {}
        # Publishing is in-memory work (statuses from the services' listings), so one lock is cheap.
        self._lock = threading.Lock()

    def publish(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        with self._lock:
            done = self._published.setdefault(container_id, set())
            if kind in done:
                return
            if kind == ContainerEventType.STARTED and ContainerEventType.STOPPED in done:
                return  # its exit already reported the start
            if kind == ContainerEventType.STOPPED and ContainerEventType.STARTED not in done:
                self._publisher.container_event(container_id, pod_id, ContainerEventType.STARTED)
                done.add(ContainerEventType.STARTED)
            self._publisher.container_event(container_id, pod_id, kind)
            done.add(kind)
            if kind == ContainerEventType.DELETED:
                del self._published[container_id]


class ContainerLifecycleEvents:
    def __init__(
        self, handlers: ContainerHandlers, service: ContainerService, ledger: LifecycleLedger
    ) -> None:
        self._handlers = handlers
        self._service = service
        self._ledger = ledger

    def CreateContainer(
        self, request: pb.CreateContainerRequest, context: grpc.ServicerContext
    ) -> pb.CreateContainerResponse:
        response = self._handlers.CreateContainer(request, context)
        self._publish(response.container_id, ContainerEventType.CREATED)
        return response

    def StartContainer(
        self, request: pb.StartContainerRequest, context: grpc.ServicerContext
    ) -> pb.StartContainerResponse:
        response = self._handlers.StartContainer(request, context)
        self._publish(request.container_id, ContainerEventType.STARTED)
        return response

    def RemoveContainer(
        self, request: pb.RemoveContainerRequest, context: grpc.ServicerContext
    ) -> pb.RemoveContainerResponse:
        known = self._lookup(request.container_id)
        response = self._handlers.RemoveContainer(request, context)
        if known is not None:
            self._ledger.publish(known[0], known[1], ContainerEventType.DELETED)
        return response

    def __getattr__(self, name: str) -> Any:
        """Every other RPC of the container group passes through unchanged."""
        return getattr(self._handlers, name)

    def _publish(self, container_id: str, kind: ContainerEventType) -> None:
        known = self._lookup(container_id)
        if known is not None:
            self._ledger.publish(known[0], known[1], kind)

    def _lookup(self, container_id: str) -> tuple[str, str] | None:
        """(full id, sandbox id): requests may name a container by a unique id prefix."""
        if not container_id:
            return None
        found = self._service.list_containers(ContainerFilter(id=container_id))
        return (found[0].id, found[0].sandbox_id) if len(found) == 1 else None


class ContainerExits:
    """The exit watcher's callback: learn the exit, publish STOPPED, count OOM kills."""

    def __init__(self, service: ContainerService, ledger: LifecycleLedger, metrics: RuntimeMetrics) -> None:
        self._service = service
        self._ledger = ledger
        self._metrics = metrics

    def on_exit(self, container_id: str) -> None:
        # Its own thread: refreshing takes the container's lock, which a StopContainer in progress holds,
        # and other exits must not wait for that.
        threading.Thread(
            target=self._handle, args=(container_id,), name="container-exit", daemon=True
        ).start()

    def _handle(self, container_id: str) -> None:
        try:
            container = self._service.status(container_id)
        except NotFound:
            return  # not a container's exit file (or already removed)
        if container.id != container_id or container.state != ContainerState.EXITED:
            return
        if container.reason == REASON_OOM_KILLED:
            self._metrics.container_oom_killed()
        self._ledger.publish(container.id, container.sandbox_id, ContainerEventType.STOPPED)

"""The sandbox handlers, also reporting each pod's infra container as container events (as cri-o does):
CREATED and STARTED after RunPodSandbox, STOPPED when StopPodSandbox stops a ready pod, DELETED after
RemovePodSandbox (built before the removal, while the pod's status still exists)."""

from typing import Any

import grpc

from adapters.cri.events import CriEventPublisher, CriStatusSource
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import SandboxHandlers
from domain.errors import NotFound
from domain.events import ContainerEventType


class SandboxEventHandlers:
    def __init__(
        self, handlers: SandboxHandlers, publisher: CriEventPublisher, statuses: CriStatusSource
    ) -> None:
        self._handlers = handlers
        self._publisher = publisher
        self._statuses = statuses

    def RunPodSandbox(
        self, request: pb.RunPodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.RunPodSandboxResponse:
        response = self._handlers.RunPodSandbox(request, context)
        pod_id = response.pod_sandbox_id
        self._publisher.container_event(pod_id, pod_id, ContainerEventType.CREATED)
        self._publisher.container_event(pod_id, pod_id, ContainerEventType.STARTED)
        return response

    def StopPodSandbox(
        self, request: pb.StopPodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.StopPodSandboxResponse:
        before = self._status(request.pod_sandbox_id)
        response = self._handlers.StopPodSandbox(request, context)
        if before is not None and before.state == pb.SANDBOX_READY:
            self._publisher.container_event(before.id, before.id, ContainerEventType.STOPPED)
        return response

    def RemovePodSandbox(
        self, request: pb.RemovePodSandboxRequest, context: grpc.ServicerContext
    ) -> pb.RemovePodSandboxResponse:
        before = self._status(request.pod_sandbox_id)
        event = None
        if before is not None:
            event = self._publisher.prepare(before.id, before.id, ContainerEventType.DELETED)
        response = self._handlers.RemovePodSandbox(request, context)
        self._publisher.send(event)
        return response

    def __getattr__(self, name: str) -> Any:
        """Every other RPC of the sandbox group passes through unchanged."""
        return getattr(self._handlers, name)

    def _status(self, pod_id: str) -> pb.PodSandboxStatus | None:
        if not pod_id:
            return None
        try:
            return self._statuses.pod_sandbox_status(pod_id)
        except NotFound:
            return None

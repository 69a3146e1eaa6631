"""CriStatusSource: what PodSandboxStatus and ContainerStatus would answer, for container events.

Container statuses come from the service's listing rather than from ContainerStatus calls: those take each
container's lock, which a StopContainer in progress holds for its whole grace period, and publishing an
event must never wait on that.
"""

from adapters.cri.containers import _status as container_status
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import SandboxHandlers
from domain.containers import ContainerFilter, ContainerService


class HandlerStatuses:
    def __init__(self, sandboxes: SandboxHandlers, containers: ContainerService) -> None:
        self._sandboxes = sandboxes
        self._containers = containers

    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        status: pb.PodSandboxStatus = self._sandboxes.PodSandboxStatus(request, None).status
        return status

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        return [
            container_status(c) for c in self._containers.list_containers(ContainerFilter(sandbox_id=pod_id))
        ]

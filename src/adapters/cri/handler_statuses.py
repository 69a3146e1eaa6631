"""CriStatusSource over the PodSandboxStatus handler: events carry exactly what that RPC would answer."""

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import SandboxHandlers


class HandlerStatuses:
    def __init__(self, sandboxes: SandboxHandlers) -> None:
        self._sandboxes = sandboxes

    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id)
        status: pb.PodSandboxStatus = self._sandboxes.PodSandboxStatus(request, None).status
        return status

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        return []

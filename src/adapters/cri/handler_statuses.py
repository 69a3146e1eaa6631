"""CriStatusSource: what PodSandboxStatus and ContainerStatus would answer, for container events.

Container statuses come from the service's listing rather than from ContainerStatus calls: those take each
container's lock, which a StopContainer in progress holds for its whole grace period, and publishing an
event must never wait on that. The services are looked up at first use: they report their events here, so
they are built after this source.
"""

from collections.abc import Callable

from adapters.cri.containers import container_status
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import pod_sandbox_status
from domain.containers import ContainerFilter, ContainerService
from domain.sandboxes import SandboxService


class HandlerStatuses:
    def __init__(
        self, sandboxes: Callable[[], SandboxService], containers: Callable[[], ContainerService]
    ) -> None:
        self._sandboxes = sandboxes
        self._containers = containers

    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        return pod_sandbox_status(self._sandboxes().status(pod_id))

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        """Newest first, as cri-o lists them: an evented kubelet's GetPodStatus takes PodSandboxStatus's list
        unsorted and picks a container's status as the first of its name, so an older, exited attempt
        listed first would hide the running one (the kubelet would create that attempt again)."""
        found = self._containers().list_containers(ContainerFilter(sandbox_id=pod_id))
        return [container_status(c) for c in sorted(found, key=lambda c: c.created_at, reverse=True)]

"""Stand-ins for the pods and containers services until those are wired in (see docs/monitoring.md).

A daemon without them has no pods and no containers, so these answer exactly that: empty listings and
NotFound. `app/container.py` swaps them for thin adapters over the real services.
"""

from adapters.cri.generated import api_pb2 as pb
from domain.errors import NotFound
from ports.workloads import ContainerInfo, PodInfo


class NoWorkloads:
    def pods(self) -> list[PodInfo]:
        return []

    def containers(self) -> list[ContainerInfo]:
        return []


class NoPodStatuses:
    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        raise NotFound(f"pod sandbox {pod_id} not found")

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        return []

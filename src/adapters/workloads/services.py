"""WorkloadInventory over the real sandbox service (and the containers service once it is merged)."""

from domain.sandbox_model import PodSandbox, SandboxState
from domain.sandboxes import SandboxService
from ports.workloads import ContainerInfo, PodInfo


class ServiceWorkloads:
    def __init__(self, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes

    def pods(self) -> list[PodInfo]:
        return [pod_info(sb) for sb in self._sandboxes.list()]

    def containers(self) -> list[ContainerInfo]:
        return []


def pod_info(sb: PodSandbox) -> PodInfo:
    metadata = sb.config.metadata
    return PodInfo(
        id=sb.id,
        name=metadata.name,
        namespace=metadata.namespace,
        uid=metadata.uid,
        attempt=metadata.attempt,
        labels=dict(sb.config.labels),
        annotations=dict(sb.config.annotations),
        # Only a parent the kubelet gave is this pod's own cgroup; pycrio's default parent is shared by
        # every pod without one, so those pods add up their containers instead.
        cgroup_parent=sb.cgroup_parent if sb.config.cgroup_parent else "",
        netns_path=sb.namespaces.network or None,
        ready=sb.state == SandboxState.READY,
    )

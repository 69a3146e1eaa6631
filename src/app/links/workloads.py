"""WorkloadInventory over the real sandbox and container services, and the layer store that knows where
each container's writable layer is."""

from pathlib import Path

from domain.containers import Container, ContainerService, ContainerState
from domain.sandbox_model import PodSandbox, SandboxState
from domain.sandboxes import SandboxService
from ports.layer_store import LayerStore
from ports.workloads import ContainerInfo, PodInfo


class ServiceWorkloads:
    def __init__(self, sandboxes: SandboxService, containers: ContainerService, layers: LayerStore) -> None:
        self._sandboxes = sandboxes
        self._containers = containers
        self._layers = layers

    def pods(self) -> list[PodInfo]:
        return [pod_info(sb) for sb in self._sandboxes.list()]

    def containers(self) -> list[ContainerInfo]:
        return [
            container_info(c, self._layers.writable_layer(c.id)) for c in self._containers.list_containers()
        ]


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


def container_info(container: Container, writable_layer: Path | None) -> ContainerInfo:
    linux = container.spec.get("linux", {})
    return ContainerInfo(
        id=container.id,
        pod_id=container.sandbox_id,
        name=container.config.name,
        attempt=container.config.attempt,
        labels=dict(container.config.labels),
        annotations=dict(container.config.annotations),
        image=container.image_name or container.image_ref,
        cgroup=str(linux.get("cgroupsPath", "")) if isinstance(linux, dict) else "",
        upper_dir=str(writable_layer) if writable_layer is not None else None,
        running=container.state == ContainerState.RUNNING,
        started_at_ns=container.started_at,
    )

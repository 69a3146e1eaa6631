"""An in-memory CriStatusSource: pod and container statuses as the test sets them."""

from adapters.cri.generated import api_pb2 as pb
from domain.errors import NotFound


class FakeCriStatusSource:
    def __init__(self) -> None:
        self.pods: dict[str, pb.PodSandboxStatus] = {}
        self.containers: dict[str, list[pb.ContainerStatus]] = {}
        self.lookups = 0

    def add_pod(self, pod_id: str, name: str = "pod", uid: str = "uid-1", namespace: str = "default") -> None:
        self.pods[pod_id] = pb.PodSandboxStatus(
            id=pod_id,
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace),
            state=pb.SANDBOX_READY,
        )
        self.containers.setdefault(pod_id, [])

    def set_container(self, pod_id: str, container_id: str, state: "pb.ContainerState") -> None:
        others = [c for c in self.containers[pod_id] if c.id != container_id]
        self.containers[pod_id] = [*others, pb.ContainerStatus(id=container_id, state=state)]

    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        self.lookups += 1
        if pod_id not in self.pods:
            raise NotFound(f"pod sandbox {pod_id} not found")
        return self.pods[pod_id]

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        return list(self.containers.get(pod_id, []))

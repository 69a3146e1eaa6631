"""An in-memory WorkloadInventory: the pods and containers the test puts in."""

import threading

from ports.workloads import ContainerInfo, PodInfo


class FakeWorkloadInventory:
    def __init__(self) -> None:
        self._pods: dict[str, PodInfo] = {}
        self._containers: dict[str, ContainerInfo] = {}
        self._lock = threading.Lock()

    def add_pod(self, pod: PodInfo) -> None:
        with self._lock:
            self._pods[pod.id] = pod

    def add_container(self, container: ContainerInfo) -> None:
        with self._lock:
            self._containers[container.id] = container

    def remove_container(self, container_id: str) -> None:
        with self._lock:
            self._containers.pop(container_id, None)

    def remove_pod(self, pod_id: str) -> None:
        with self._lock:
            self._pods.pop(pod_id, None)

    def pods(self) -> list[PodInfo]:
        with self._lock:
            return list(self._pods.values())

    def containers(self) -> list[ContainerInfo]:
        with self._lock:
            return list(self._containers.values())

"""PodContainers (what the sandbox service calls to stop and remove a pod's containers) over the
containers service.

The two services need each other (a container needs its sandbox's facts; a sandbox stops its containers).
The containers service is therefore looked up at the first call, through the provider app/container.py
passes in, rather than bound after construction.
"""

from collections.abc import Callable

from domain.containers import ContainerService


class ServicePodContainers:
    def __init__(self, containers: Callable[[], ContainerService]) -> None:
        self._containers = containers

    def stop_all(self, sandbox_id: str, timeout: float) -> None:
        self._containers().stop_all(sandbox_id, timeout)

    def remove_all(self, sandbox_id: str) -> None:
        self._containers().remove_all(sandbox_id)

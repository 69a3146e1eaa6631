"""PodContainers (what the sandbox service calls to stop and remove a pod's containers) over the
containers service.

The two services need each other (a container needs its sandbox's facts; a sandbox stops its containers), so
this adapter is made first and bound to the containers service once that exists. Until then no container can
exist, so a pod has none.
"""

from domain.containers import ContainerService


class ServicePodContainers:
    def __init__(self) -> None:
        self._service: ContainerService | None = None

    def bind(self, service: ContainerService) -> None:
        self._service = service

    def stop_all(self, sandbox_id: str, timeout: float) -> None:
        if self._service is not None:
            self._service.stop_all(sandbox_id, timeout)

    def remove_all(self, sandbox_id: str) -> None:
        if self._service is not None:
            self._service.remove_all(sandbox_id)

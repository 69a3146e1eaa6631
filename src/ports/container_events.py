"""Where the pods and containers services report lifecycle changes (GetContainerEvents feeds on it)."""

from typing import Protocol

from domain.events import ContainerEventType


class ContainerEventSink(Protocol):
    def container_event(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        """Report a change after it happened; never blocks, never raises (nobody listening is fine).

        A pod's infra container is reported with the sandbox id as `container_id`, as cri-o does.
        """
        ...

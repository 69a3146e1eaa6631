"""Where the pods and containers services report lifecycle changes (GetContainerEvents feeds on it).

The services report through `domain.events.LifecycleLedger`, which keeps each container's events single and
in order; the ledger hands them to this sink.
"""

import enum
from collections.abc import Callable
from typing import Protocol


class ContainerEventType(enum.Enum):
    CREATED = "created"
    STARTED = "started"
    STOPPED = "stopped"
    DELETED = "deleted"


class ContainerEventSink(Protocol):
    def container_event(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        """Report a change after it happened; never blocks, never raises (nobody listening is fine).

        A pod's infra container is reported with the sandbox id as `container_id`, as cri-o does.
        """
        ...

    def prepare(self, container_id: str, pod_id: str, kind: ContainerEventType) -> Callable[[], None]:
        """The event as things stand now (before a removal takes away what it describes); calling the
        result reports it. Never blocks, never raises."""
        ...

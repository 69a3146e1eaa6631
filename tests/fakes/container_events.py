"""A ContainerEventSink that records what the services reported, in order."""

import threading
from collections.abc import Callable

from ports.container_events import ContainerEventType


class RecordingEventSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, ContainerEventType]] = []
        self._lock = threading.Lock()

    def container_event(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        with self._lock:
            self.events.append((container_id, pod_id, kind))

    def prepare(self, container_id: str, pod_id: str, kind: ContainerEventType) -> Callable[[], None]:
        return lambda: self.container_event(container_id, pod_id, kind)

    def kinds(self, container_id: str) -> list[ContainerEventType]:
        with self._lock:
            return [kind for cid, _, kind in self.events if cid == container_id]

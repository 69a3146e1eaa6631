"""A ContainerEventSink that records what the services reported, in order."""

import threading

from domain.events import ContainerEventType


class RecordingEventSink:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, ContainerEventType]] = []
        self._lock = threading.Lock()

    def container_event(self, container_id: str, pod_id: str, kind: ContainerEventType) -> None:
        with self._lock:
            self.events.append((container_id, pod_id, kind))

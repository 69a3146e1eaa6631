"""The containers of each pod as the sandbox service sees them, until the containers service exists."""

import threading


class FakePodContainers:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # sandbox id -> container id -> running?
        self.containers: dict[str, dict[str, bool]] = {}
        self.calls: list[tuple[str, str]] = []

    def add(self, sandbox_id: str, container_id: str, running: bool = True) -> None:
        with self._lock:
            self.containers.setdefault(sandbox_id, {})[container_id] = running

    def stop_all(self, sandbox_id: str, timeout: float) -> None:
        with self._lock:
            self.calls.append(("stop_all", sandbox_id))
            for container_id in self.containers.get(sandbox_id, {}):
                self.containers[sandbox_id][container_id] = False

    def remove_all(self, sandbox_id: str) -> None:
        with self._lock:
            self.calls.append(("remove_all", sandbox_id))
            self.containers.pop(sandbox_id, None)

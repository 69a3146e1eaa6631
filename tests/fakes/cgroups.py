"""An in-memory cgroup tree: paths, and which ones hold processes (and so cannot be removed)."""

import threading

from domain.errors import Internal


class FakeCgroups:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.paths: set[str] = set()
        self.busy: set[str] = set()

    def exists(self, path: str) -> bool:
        with self._lock:
            return path in self.paths

    def create(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        with self._lock:
            for depth in range(1, len(parts) + 1):
                self.paths.add("/" + "/".join(parts[:depth]))

    def procs_files(self, path: str) -> list[str]:
        return [f"/fake/cgroup/{controller}{path}/cgroup.procs" for controller in ("cpu", "memory", "pids")]

    def remove(self, path: str) -> None:
        with self._lock:
            if path in self.busy:
                raise Internal(f"cgroup {path} still has processes")
            if any(p.startswith(path + "/") for p in self.paths):
                raise Internal(f"cgroup {path} has child cgroups")
            self.paths.discard(path)

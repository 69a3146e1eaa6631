"""An in-memory cgroup tree: paths, which ones hold processes (and so cannot be removed), and each one's
limits. Like the kernel, it refuses CPUs it does not have, and then keeps the old limits."""

import dataclasses
import threading

from domain.errors import Internal, InvalidArgument
from ports.cgroups import CgroupLimits


class FakeCgroups:
    def __init__(self, cpus: int = 2, unified: bool = False) -> None:
        self._lock = threading.Lock()
        self._cpus = cpus
        self._unified = unified
        self.paths: set[str] = set()
        self.busy: set[str] = set()
        self.limits: dict[str, CgroupLimits] = {}
        self.members: dict[int, str] = {}
        self.oom_counts: dict[str, int] = {}  # a test sets these (the kernel's memory.events oom_kill)

    def exists(self, path: str) -> bool:
        with self._lock:
            return path in self.paths

    def create(self, path: str) -> None:
        parts = [p for p in path.split("/") if p]
        with self._lock:
            for depth in range(1, len(parts) + 1):
                self.paths.add("/" + "/".join(parts[:depth]))

    def attach(self, path: str, pid: int) -> None:
        self.create(path)
        with self._lock:
            self.busy.add(path)
            self.members[pid] = path

    def release(self, pid: int) -> None:
        """The process ended: its cgroup holds no process any more (what the kernel and systemd see)."""
        with self._lock:
            path = self.members.pop(pid, None)
            if path is not None and path not in self.members.values():
                self.busy.discard(path)

    def oom_kills(self, path: str) -> int | None:
        with self._lock:
            return self.oom_counts.get(path) if self._unified else None

    def procs_files(self, path: str) -> list[str]:
        return [f"/fake/cgroup/{controller}{path}/cgroup.procs" for controller in ("cpu", "memory", "pids")]

    def remove(self, path: str) -> None:
        with self._lock:
            if path in self.busy:
                raise Internal(f"cgroup {path} still has processes")
            if any(p.startswith(path + "/") for p in self.paths):
                raise Internal(f"cgroup {path} has child cgroups")
            self.paths.discard(path)

    def set_limits(self, path: str, limits: CgroupLimits) -> None:
        if limits.unified and not self._unified:
            raise InvalidArgument("unified: cgroup v2 files cannot be set on a cgroup v1 host")
        for part in limits.cpuset_cpus.replace("-", ",").split(","):
            if part and int(part) >= self._cpus:
                raise Internal(f"cannot write {limits.cpuset_cpus!r} to {path}/cpuset.cpus: Invalid argument")
        with self._lock:
            if path not in self.paths:
                raise Internal(f"cgroup {path} does not exist")
            current = self.limits.get(path, CgroupLimits())
            changes = {
                f.name: getattr(limits, f.name) for f in dataclasses.fields(limits) if getattr(limits, f.name)
            }
            if "unified" in changes:
                changes["unified"] = tuple(sorted({**dict(current.unified), **dict(limits.unified)}.items()))
            self.limits[path] = dataclasses.replace(current, **changes)

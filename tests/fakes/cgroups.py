"""An in-memory cgroup tree: paths per hierarchy, which ones hold processes (and so cannot be removed), and
each one's limits. Like the kernel, it refuses CPUs it does not have, and then keeps the old limits.

`trees[hierarchy]` may be filled directly to stand for cgroups someone else (the kubelet) made."""

import dataclasses
import threading
from collections.abc import Collection

from domain.cgroup_paths import cgroup_levels
from domain.errors import Internal, InvalidArgument
from ports.cgroups import CgroupLimits

HIERARCHIES = ("cpu,cpuacct", "memory", "pids", "name=systemd")


class FakeCgroups:
    def __init__(self, cpus: int = 2, unified: bool = False) -> None:
        self._lock = threading.Lock()
        self._cpus = cpus
        self._unified = unified
        self.trees: dict[str, set[str]] = {h: set() for h in ((".",) if unified else HIERARCHIES)}
        self.busy: set[str] = set()
        self.limits: dict[str, CgroupLimits] = {}

    @property
    def paths(self) -> set[str]:
        """Every path that is there in some hierarchy."""
        with self._lock:
            return set().union(*self.trees.values())

    def make(self, path: str, hierarchies: Collection[str]) -> None:
        """Stand for another program (the kubelet) making `path` and its parents in some hierarchies."""
        with self._lock:
            for hierarchy in hierarchies:
                self.trees[hierarchy].update(cgroup_levels(path))

    def hierarchies(self) -> tuple[str, ...]:
        return tuple(self.trees)

    def exists(self, path: str) -> bool:
        with self._lock:
            return all(path in tree for tree in self.trees.values())

    def missing(self, path: str) -> dict[str, tuple[str, ...]]:
        with self._lock:
            absent = {
                h: tuple(p for p in cgroup_levels(path) if p not in tree) for h, tree in self.trees.items()
            }
        return {h: levels for h, levels in absent.items() if levels}

    def create(self, path: str) -> dict[str, tuple[str, ...]]:
        made = self.missing(path)
        with self._lock:
            for hierarchy, levels in made.items():
                self.trees[hierarchy].update(levels)
        return made

    def procs_files(self, path: str) -> list[str]:
        return [f"/fake/cgroup/{hierarchy}{path}/cgroup.procs" for hierarchy in self.trees]

    def remove(self, path: str, hierarchies: Collection[str] | None = None) -> None:
        with self._lock:
            chosen = [h for h in self.trees if hierarchies is None or h in hierarchies]
            present = [h for h in chosen if path in self.trees[h]]
            if present and path in self.busy:
                raise Internal(f"cgroup {path} still has processes")
            if any(p.startswith(path + "/") for h in present for p in self.trees[h]):
                raise Internal(f"cgroup {path} has child cgroups")
            for hierarchy in present:
                self.trees[hierarchy].discard(path)

    def set_limits(self, path: str, limits: CgroupLimits) -> None:
        if limits.unified and not self._unified:
            raise InvalidArgument("unified: cgroup v2 files cannot be set on a cgroup v1 host")
        for part in limits.cpuset_cpus.replace("-", ",").split(","):
            if part and int(part) >= self._cpus:
                raise Internal(f"cannot write {limits.cpuset_cpus!r} to {path}/cpuset.cpus: Invalid argument")
        with self._lock:
            if not all(path in tree for tree in self.trees.values()):
                raise Internal(f"cgroup {path} does not exist")
            current = self.limits.get(path, CgroupLimits())
            changes = {
                f.name: getattr(limits, f.name) for f in dataclasses.fields(limits) if getattr(limits, f.name)
            }
            if "hugepage_limits" in changes:
                merged = {**dict(current.hugepage_limits), **dict(limits.hugepage_limits)}
                changes["hugepage_limits"] = tuple(sorted(merged.items()))
            if "unified" in changes:
                changes["unified"] = tuple(sorted({**dict(current.unified), **dict(limits.unified)}.items()))
            self.limits[path] = dataclasses.replace(current, **changes)

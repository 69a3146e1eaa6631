"""Creating and removing the cgroups a pod's processes live in, and setting a pod cgroup's limits. Two
drivers: cgroupfs (v1 controllers or unified v2, made as directories) and systemd (slices and scopes made
through systemd; paths are the expanded slice paths, `/a.slice/a-b.slice/x.scope`, whose last part is the
unit).

Creation reports exactly which directories it made, so that the caller removes only those: the kubelet makes
its QoS tree (`/kubepods/...`) itself, in the hierarchies it uses, and those are never pycrio's to remove."""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


class Cgroups(Protocol):
    """Paths are absolute within a hierarchy, e.g. /kubepods/burstable/pod123."""

    def hierarchies(self) -> tuple[str, ...]:
        """The hierarchies a pod's processes join: every v1 hierarchy (with the unified one of a hybrid
        host), or the one v2 tree."""
        ...

    def exists(self, path: str) -> bool:
        """Whether `path` is there in every hierarchy."""
        ...

    def missing(self, path: str) -> dict[str, tuple[str, ...]]:
        """Per hierarchy, `path` and those of its ancestors that are absent there, outermost first
        (hierarchies with nothing missing are left out)."""
        ...

    def create(self, path: str) -> dict[str, tuple[str, ...]]:
        """Create it (and missing parents) in every hierarchy; existing ones are kept. Returns exactly the
        directories this call made, per hierarchy, outermost first: one another creator made a moment
        earlier is not in it."""
        ...

    def attach(self, path: str, pid: int) -> None:
        """Put the running process `pid` into `path`, creating it: cgroupfs writes the pid into the cgroup's
        procs files; systemd starts `path`'s last component as a transient scope (Delegate=yes) in the
        slice above it, holding the process."""
        ...

    def procs_files(self, path: str) -> list[str]:
        """The cgroup.procs files a process writes itself into to join `path`."""
        ...

    def remove(self, path: str, hierarchies: Collection[str] | None = None) -> None:
        """Remove it from the named hierarchies (all when None); absent is not an error, a cgroup with
        processes or child cgroups is (Internal)."""
        ...

    def oom_kills(self, path: str) -> int | None:
        """How many processes the OOM killer has killed in `path` and below (cgroup v2 `memory.events`,
        which counts descendants too); None where that cannot be told (cgroup v1, no such cgroup)."""
        ...

    def set_limits(self, path: str, limits: "CgroupLimits") -> None:
        """Write the limits that are set to `path`'s controller files, all or none: when one write fails,
        the files already written get their old contents back and the error is raised (InvalidArgument for a
        limit this hierarchy cannot hold, Internal with the file's name for a write the kernel refuses)."""
        ...


@dataclass(frozen=True)
class CgroupLimits:
    """Limits for one cgroup in cgroup v1 units (the driver converts for v2). 0 or "" leaves a file as it is;
    `unified` holds raw cgroup v2 files, refused on v1. `hugepage_limits` are (page size like "2MB", bytes),
    each written even when 0 (no huge pages of that size)."""

    cpu_shares: int = 0
    cpu_quota_us: int = 0  # -1: no quota
    cpu_period_us: int = 0
    memory_limit_bytes: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    unified: tuple[tuple[str, str], ...] = ()
    hugepage_limits: tuple[tuple[str, int], ...] = ()

    @property
    def empty(self) -> bool:
        return self == CgroupLimits()

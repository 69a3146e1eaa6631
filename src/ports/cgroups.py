"""Creating and removing the cgroups a pod's processes live in, and setting a pod cgroup's limits. Two
drivers: cgroupfs (v1 controllers or unified v2, made as directories) and systemd (slices and scopes made
through systemd; paths are the expanded slice paths, `/a.slice/a-b.slice/x.scope`, whose last part is the
unit)."""

from dataclasses import dataclass
from typing import Protocol


class Cgroups(Protocol):
    def exists(self, path: str) -> bool:
        """`path` is absolute within the hierarchy, e.g. /kubepods/burstable/pod123."""
        ...

    def create(self, path: str) -> None:
        """Create it (and missing parents) in every controller; existing ones are kept."""
        ...

    def attach(self, path: str, pid: int) -> None:
        """Put the running process `pid` into `path`, creating it: cgroupfs writes the pid into the cgroup's
        procs files; systemd starts `path`'s last component as a transient scope (Delegate=yes) in the
        slice above it, holding the process."""
        ...

    def procs_files(self, path: str) -> list[str]:
        """The cgroup.procs files a process writes itself into to join `path`."""
        ...

    def remove(self, path: str) -> None:
        """Remove it from every controller; absent is not an error, a cgroup with processes is (Internal)."""
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
    `unified` holds raw cgroup v2 files, refused on v1."""

    cpu_shares: int = 0
    cpu_quota_us: int = 0  # -1: no quota
    cpu_period_us: int = 0
    memory_limit_bytes: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    unified: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        return self == CgroupLimits()

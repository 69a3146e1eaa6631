"""Reading one cgroup's resource counters: the numbers behind container and pod stats and metrics.

Values are already normalised across cgroup v1 and v2 (nanoseconds, bytes, counts), so nothing above
this port knows which hierarchy the node runs.
"""

from dataclasses import dataclass
from typing import Literal, Protocol

CgroupVersion = Literal[1, 2]


@dataclass(frozen=True)
class IoDevice:
    """Block I/O of a cgroup on one device (bytes and operations since the cgroup was made)."""

    major: int
    minor: int
    read_bytes: int
    write_bytes: int
    reads: int
    writes: int


@dataclass(frozen=True)
class PressureLine:
    """One line of a cgroup v2 pressure file: the share of time (%) some or all tasks stalled, over 10 s,
    60 s and 300 s, and the total stall time since the cgroup was made."""

    avg10: float
    avg60: float
    avg300: float
    total_ns: int


@dataclass(frozen=True)
class Pressure:
    """Pressure stall information of one resource (cpu.pressure, memory.pressure, io.pressure)."""

    some: PressureLine
    full: PressureLine | None  # cpu.pressure has no `full` line on older kernels


@dataclass(frozen=True)
class CgroupSample:
    """One reading of a cgroup. None means the node cannot tell (no such controller or no accounting)."""

    cpu_usage_ns: int
    cpu_user_ns: int
    cpu_system_ns: int
    cpu_periods: int
    cpu_throttled_periods: int
    cpu_throttled_ns: int
    memory_usage_bytes: int
    # usage minus inactive file pages: what the kubelet evicts on (cAdvisor's definition).
    memory_working_set_bytes: int
    memory_rss_bytes: int
    memory_cache_bytes: int
    memory_mapped_file_bytes: int
    # None: no limit.
    memory_limit_bytes: int | None
    memory_max_usage_bytes: int | None
    memory_failcnt: int
    page_faults: int
    major_page_faults: int
    oom_kills: int
    # None: swap is not accounted on this node.
    swap_usage_bytes: int | None
    swap_limit_bytes: int | None
    pids_current: int | None
    pids_limit: int | None
    # Kernel memory charged to the cgroup (slab, stacks, page tables).
    memory_kernel_bytes: int = 0
    # CPU settings as the cgroup holds them (None: not set, or no limit for the quota).
    cpu_shares: int | None = None
    cpu_quota_us: int | None = None
    cpu_period_us: int | None = None
    io_devices: tuple[IoDevice, ...] = ()
    # The processes in the cgroup (cgroup.procs).
    procs: tuple[int, ...] = ()
    # PSI, cgroup v2 only (None on v1, or a kernel without CONFIG_PSI / booted with psi=0).
    cpu_pressure: Pressure | None = None
    memory_pressure: Pressure | None = None
    io_pressure: Pressure | None = None

    @property
    def memory_available_bytes(self) -> int | None:
        """Limit minus working set, as the kubelet reads "available"; None without a limit."""
        if self.memory_limit_bytes is None:
            return None
        return max(self.memory_limit_bytes - self.memory_working_set_bytes, 0)

    @property
    def swap_available_bytes(self) -> int | None:
        if self.swap_limit_bytes is None or self.swap_usage_bytes is None:
            return None
        return max(self.swap_limit_bytes - self.swap_usage_bytes, 0)


class CgroupStatsReader(Protocol):
    """Reads cgroups named the way the OCI runtime was given them (see adapters/cgroups/paths.py)."""

    @property
    def version(self) -> CgroupVersion: ...

    def read(self, cgroup: str) -> CgroupSample:
        """Sample the cgroup now; raises domain.errors.NotFound when it does not exist (any more)."""
        ...

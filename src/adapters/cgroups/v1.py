"""CgroupStatsReader for cgroup v1: one hierarchy per controller (cpuacct, cpu, memory, pids).

Memory figures use the `total_*` (hierarchical) keys of memory.stat, so a pod cgroup counts its
containers, the way cAdvisor reads v1.
"""

from pathlib import Path

from adapters.cgroups.files import read_int, read_keyed, read_limit, read_pids, read_v1_blkio
from adapters.cgroups.paths import CgroupDriver, hierarchy_path
from domain.errors import NotFound
from ports.cgroup_stats import CgroupSample, CgroupVersion, IoDevice

_USER_HZ_NS = 10_000_000  # cpuacct.stat counts USER_HZ (100/s) ticks


class CgroupV1StatsReader:
    def __init__(self, root: Path = Path("/sys/fs/cgroup"), driver: CgroupDriver = "cgroupfs") -> None:
        self._root = root
        self._driver = driver

    @property
    def version(self) -> CgroupVersion:
        return 1

    def read(self, cgroup: str) -> CgroupSample:
        relative = hierarchy_path(cgroup, self._driver).lstrip("/")
        cpuacct = self._root / "cpuacct" / relative
        cpu = self._root / "cpu" / relative
        memory = self._root / "memory" / relative
        pids = self._root / "pids" / relative
        blkio = self._root / "blkio" / relative
        if not (cpuacct.is_dir() or memory.is_dir()):
            raise NotFound(f"cgroup {cgroup} not found")

        user_ns, system_ns = _cpu_split(cpuacct)
        throttling = read_keyed(cpu / "cpu.stat")
        usage = read_int(memory / "memory.usage_in_bytes") or 0
        stat = read_keyed(memory / "memory.stat")
        limit = read_limit(memory / "memory.limit_in_bytes")
        swap_usage, swap_limit = _swap(memory, usage, stat, limit)
        return CgroupSample(
            cpu_usage_ns=read_int(cpuacct / "cpuacct.usage") or 0,
            cpu_user_ns=user_ns,
            cpu_system_ns=system_ns,
            cpu_periods=throttling.get("nr_periods", 0),
            cpu_throttled_periods=throttling.get("nr_throttled", 0),
            cpu_throttled_ns=throttling.get("throttled_time", 0),
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(usage - stat.get("total_inactive_file", 0), 0),
            memory_rss_bytes=stat.get("total_rss", 0),
            memory_cache_bytes=stat.get("total_cache", 0),
            memory_mapped_file_bytes=stat.get("total_mapped_file", 0),
            memory_limit_bytes=limit,
            memory_max_usage_bytes=read_int(memory / "memory.max_usage_in_bytes"),
            memory_failcnt=read_int(memory / "memory.failcnt") or 0,
            page_faults=stat.get("total_pgfault", 0),
            major_page_faults=stat.get("total_pgmajfault", 0),
            oom_kills=read_keyed(memory / "memory.oom_control").get("oom_kill", 0),
            swap_usage_bytes=swap_usage,
            swap_limit_bytes=swap_limit,
            pids_current=read_int(pids / "pids.current"),
            pids_limit=read_limit(pids / "pids.max"),
            memory_kernel_bytes=read_int(memory / "memory.kmem.usage_in_bytes") or 0,
            cpu_shares=read_int(cpu / "cpu.shares"),
            cpu_quota_us=_quota(read_int(cpu / "cpu.cfs_quota_us")),
            cpu_period_us=read_int(cpu / "cpu.cfs_period_us"),
            io_devices=_io(blkio),
            procs=read_pids((memory if memory.is_dir() else cpuacct) / "cgroup.procs"),
        )


def _cpu_split(cpuacct: Path) -> tuple[int, int]:
    """User and system nanoseconds: exact files where the kernel has them, else the tick counts."""
    user = read_int(cpuacct / "cpuacct.usage_user")
    system = read_int(cpuacct / "cpuacct.usage_sys")
    if user is not None and system is not None:
        return user, system
    ticks = read_keyed(cpuacct / "cpuacct.stat")
    return ticks.get("user", 0) * _USER_HZ_NS, ticks.get("system", 0) * _USER_HZ_NS


def _swap(memory: Path, usage: int, stat: dict[str, int], limit: int | None) -> tuple[int | None, int | None]:
    """v1 accounts memory+swap together (memsw); swap alone is the difference. None without memsw."""
    memsw_usage = read_int(memory / "memory.memsw.usage_in_bytes")
    if memsw_usage is None:
        return None, None
    swap_usage = stat["total_swap"] if "total_swap" in stat else max(memsw_usage - usage, 0)
    memsw_limit = read_limit(memory / "memory.memsw.limit_in_bytes")
    swap_limit = None if memsw_limit is None or limit is None else max(memsw_limit - limit, 0)
    return swap_usage, swap_limit


def _quota(value: int | None) -> int | None:
    return None if value is None or value < 0 else value  # -1: no quota


def _io(blkio: Path) -> tuple[IoDevice, ...]:
    """Recursive counters where the kernel has them, so that a pod cgroup counts its containers."""
    recursive = blkio / "blkio.throttle.io_service_bytes_recursive"
    if recursive.exists():
        devices = read_v1_blkio(recursive, blkio / "blkio.throttle.io_serviced_recursive")
    else:
        devices = read_v1_blkio(
            blkio / "blkio.throttle.io_service_bytes", blkio / "blkio.throttle.io_serviced"
        )
    return tuple(IoDevice(major, minor, *values) for (major, minor), values in sorted(devices.items()))

"""CgroupStatsReader for cgroup v2: one unified hierarchy (cpu.stat, memory.current, memory.stat, ...)."""

from pathlib import Path

from adapters.cgroups.files import read_int, read_keyed, read_limit, read_pids, read_pressure, read_v2_io
from adapters.cgroups.paths import CgroupDriver, hierarchy_path
from domain.errors import NotFound
from ports.cgroup_stats import CgroupSample, CgroupVersion, IoDevice


class CgroupV2StatsReader:
    def __init__(self, root: Path = Path("/sys/fs/cgroup"), driver: CgroupDriver = "cgroupfs") -> None:
        self._root = root
        self._driver = driver

    @property
    def version(self) -> CgroupVersion:
        return 2

    def read(self, cgroup: str) -> CgroupSample:
        directory = self._root / hierarchy_path(cgroup, self._driver).lstrip("/")
        if not directory.is_dir():
            raise NotFound(f"cgroup {cgroup} not found")
        cpu = read_keyed(directory / "cpu.stat")
        usage = read_int(directory / "memory.current") or 0
        stat = read_keyed(directory / "memory.stat")
        events = read_keyed(directory / "memory.events")
        swap_usage = read_int(directory / "memory.swap.current")
        quota, period = _cpu_max(directory / "cpu.max")
        return CgroupSample(
            cpu_usage_ns=cpu.get("usage_usec", 0) * 1000,
            cpu_user_ns=cpu.get("user_usec", 0) * 1000,
            cpu_system_ns=cpu.get("system_usec", 0) * 1000,
            cpu_periods=cpu.get("nr_periods", 0),
            cpu_throttled_periods=cpu.get("nr_throttled", 0),
            cpu_throttled_ns=cpu.get("throttled_usec", 0) * 1000,
            memory_usage_bytes=usage,
            memory_working_set_bytes=max(usage - stat.get("inactive_file", 0), 0),
            memory_rss_bytes=stat.get("anon", 0),
            memory_cache_bytes=stat.get("file", 0),
            memory_mapped_file_bytes=stat.get("file_mapped", 0),
            memory_limit_bytes=read_limit(directory / "memory.max"),
            memory_max_usage_bytes=read_int(directory / "memory.peak"),
            # v2 has no failcnt; cAdvisor reports how often the limit was hit ("max" events).
            memory_failcnt=events.get("max", 0),
            page_faults=stat.get("pgfault", 0),
            major_page_faults=stat.get("pgmajfault", 0),
            oom_kills=events.get("oom_kill", 0),
            swap_usage_bytes=swap_usage,
            swap_limit_bytes=read_limit(directory / "memory.swap.max") if swap_usage is not None else None,
            pids_current=read_int(directory / "pids.current"),
            pids_limit=read_limit(directory / "pids.max"),
            memory_kernel_bytes=stat.get("kernel", stat.get("kernel_stack", 0) + stat.get("slab", 0)),
            cpu_shares=_shares(read_int(directory / "cpu.weight")),
            cpu_quota_us=quota,
            cpu_period_us=period,
            io_devices=tuple(
                IoDevice(major, minor, *values)
                for (major, minor), values in sorted(read_v2_io(directory / "io.stat").items())
            ),
            procs=read_pids(directory / "cgroup.procs"),
            cpu_pressure=read_pressure(directory / "cpu.pressure"),
            memory_pressure=read_pressure(directory / "memory.pressure"),
            io_pressure=read_pressure(directory / "io.pressure"),
        )


def _shares(weight: int | None) -> int | None:
    """cpu.weight (1..10000) back to v1 shares (2..262144), the inverse of runc's conversion."""
    if weight is None:
        return None
    return 2 + ((weight - 1) * 262142) // 9999


def _cpu_max(path: Path) -> tuple[int | None, int | None]:
    """cpu.max: `<quota|max> <period>`."""
    try:
        quota, period = path.read_text().split()
    except (FileNotFoundError, ValueError):
        return None, None
    return (None if quota == "max" else int(quota)), int(period)

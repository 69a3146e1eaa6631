"""An in-memory CgroupStatsReader: samples are whatever the test sets per cgroup name."""

import threading

from domain.errors import InvalidArgument, NotFound
from ports.cgroup_stats import CgroupSample, CgroupVersion


class FakeCgroupStatsReader:
    def __init__(self, version: CgroupVersion = 1, samples: dict[str, CgroupSample] | None = None) -> None:
        self._version = version
        self._samples = dict(samples or {})
        self._lock = threading.Lock()
        self.reads = 0

    @property
    def version(self) -> CgroupVersion:
        return self._version

    def set(self, cgroup: str, sample: CgroupSample) -> None:
        with self._lock:
            self._samples[cgroup] = sample

    def remove(self, cgroup: str) -> None:
        with self._lock:
            self._samples.pop(cgroup, None)

    def read(self, cgroup: str) -> CgroupSample:
        if any(part in (".", "..") for part in cgroup.replace(":", "/").split("/")):
            raise InvalidArgument(f"cgroup path {cgroup!r} must not contain . or .. components")
        with self._lock:
            self.reads += 1
            sample = self._samples.get(cgroup)
        if sample is None:
            raise NotFound(f"cgroup {cgroup} not found")
        return sample


def sample(**overrides: int | None) -> CgroupSample:
    """A plausible sample for tests that care about a few fields only."""
    values: dict[str, int | None] = {
        "cpu_usage_ns": 0,
        "cpu_user_ns": 0,
        "cpu_system_ns": 0,
        "cpu_periods": 0,
        "cpu_throttled_periods": 0,
        "cpu_throttled_ns": 0,
        "memory_usage_bytes": 0,
        "memory_working_set_bytes": 0,
        "memory_rss_bytes": 0,
        "memory_cache_bytes": 0,
        "memory_mapped_file_bytes": 0,
        "memory_limit_bytes": None,
        "memory_max_usage_bytes": None,
        "memory_failcnt": 0,
        "page_faults": 0,
        "major_page_faults": 0,
        "oom_kills": 0,
        "swap_usage_bytes": None,
        "swap_limit_bytes": None,
        "pids_current": None,
        "pids_limit": None,
    }
    values.update(overrides)
    return CgroupSample(**values)  # type: ignore[arg-type]

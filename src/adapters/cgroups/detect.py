"""Pick the cgroup reader for the running node: v2 when the unified hierarchy is mounted at the root."""

from pathlib import Path

from adapters.cgroups.paths import CgroupDriver
from adapters.cgroups.v1 import CgroupV1StatsReader
from adapters.cgroups.v2 import CgroupV2StatsReader
from ports.cgroup_stats import CgroupStatsReader


def host_cgroup_reader(driver: CgroupDriver, root: Path = Path("/sys/fs/cgroup")) -> CgroupStatsReader:
    # Hybrid hosts mount cgroup2 at <root>/unified without controllers: they are v1 for our purposes.
    if (root / "cgroup.controllers").exists():
        return CgroupV2StatsReader(root, driver)
    return CgroupV1StatsReader(root, driver)

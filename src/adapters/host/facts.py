"""Facts about this node that the services need, read once: capabilities, oom score, cgroups, boot id."""

import os
import platform
from pathlib import Path

from domain.capabilities import capabilities_from_mask
from domain.oci_spec import HostFacts


def _status_field(name: str) -> str:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _min_oom_score_adj() -> int:
    """Without CAP_SYS_RESOURCE nothing may go below the daemon's own score (children inherit it)."""
    effective = capabilities_from_mask(int(_status_field("CapEff") or "0", 16))
    if "CAP_SYS_RESOURCE" in effective:
        return -1000
    return int(Path(f"/proc/{os.getpid()}/oom_score_adj").read_text().strip())


BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def read_boot_id(path: Path = BOOT_ID) -> str:
    """The kernel's random id of this boot (a new one at every boot); "" where the kernel has none."""
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def read_host_facts(cgroup_driver: str, cgroup_root: Path = Path("/sys/fs/cgroup")) -> HostFacts:
    cgroup_v2 = (cgroup_root / "cgroup.controllers").exists()
    swap_accounting = cgroup_v2 or (cgroup_root / "memory" / "memory.memsw.limit_in_bytes").exists()
    return HostFacts(
        bounding_capabilities=capabilities_from_mask(int(_status_field("CapBnd") or "0", 16)),
        min_oom_score_adj=_min_oom_score_adj(),
        machine=platform.machine(),
        cgroup_v2=cgroup_v2,
        cgroup_driver=cgroup_driver,
        swap_accounting=swap_accounting,
        boot_id=read_boot_id(),
    )

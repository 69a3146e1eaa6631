"""The HugePages port from the host: the cgroup mounts (/proc/self/mountinfo, or the v2 root's
cgroup.controllers) and the page sizes under /sys/kernel/mm/hugepages."""

from pathlib import Path

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


class SysfsHugePages:
    def __init__(
        self,
        cgroup_root: Path = Path("/sys/fs/cgroup"),
        mountinfo: Path = Path("/proc/self/mountinfo"),
        hugepages: Path = Path("/sys/kernel/mm/hugepages"),
    ) -> None:
        self._cgroup_root = cgroup_root
        self._mountinfo = mountinfo
        self._hugepages = hugepages

    def controller_available(self) -> bool:
        controllers = self._cgroup_root / "cgroup.controllers"
        if controllers.exists():  # v2: runc enables what the root offers
            return "hugetlb" in controllers.read_text().split()
        # v1 or hybrid: runc's v1 manager sets limits only in a v1 hugetlb hierarchy, never the cgroup2 one.
        for line in self._mountinfo.read_text().splitlines():
            _, separator, tail = line.partition(" - ")
            fields = tail.split()
            if separator and len(fields) >= 3 and fields[0] == "cgroup" and "hugetlb" in fields[2].split(","):
                return True
        return False

    def page_sizes(self) -> frozenset[str]:
        try:
            entries = list(self._hugepages.iterdir())
        except FileNotFoundError:
            return frozenset()
        sizes = set()
        for entry in entries:
            name = entry.name
            if name.startswith("hugepages-") and name.endswith("kB") and name[10:-2].isdigit():
                sizes.add(page_size_name(int(name[10:-2]) * 1024))
        return frozenset(sizes)


def page_size_name(size_bytes: int) -> str:
    """Bytes as the kubelet names a page size (its HugePageUnitSizeFromByteSize): 2097152 -> "2MB"."""
    unit = 0
    while size_bytes >= 1024 and size_bytes % 1024 == 0 and unit < len(_UNITS) - 1:
        size_bytes //= 1024
        unit += 1
    return f"{size_bytes}{_UNITS[unit]}"

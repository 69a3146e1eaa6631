"""The Cgroups port for the systemd cgroup driver: pod slices and process scopes made through systemd (the
SystemdUnits port), so systemd knows every cgroup it owns and never moves pods' processes around.

Paths are the expanded slice paths the domain computes (`/kubepods.slice/kubepods-burstable.slice/
kubepods-burstable-pod<uid>.slice/pycrio-<id>.scope`); the last component is the unit. A slice's limits are
unit properties (MemoryMax, CPUWeight, CPUQuotaPerSecUSec, AllowedCPUs ...); hugepage limits and the raw
cgroup v2 files of the CRI's `unified` map, which systemd has no property for, are written to the slice's
cgroup directly.
"""

from collections.abc import Collection
from pathlib import Path

from adapters.cgroups.cgroupfs import CgroupFs, shares_to_weight
from domain.cgroup_paths import cgroup_levels
from domain.errors import Internal, InvalidArgument, NotFound
from ports.cgroups import CgroupLimits
from ports.systemd_units import UNLIMITED, PropertyValue, SystemdUnits

_DEFAULT_PERIOD_US = 100_000
# systemd keeps one tree (the unified one, or the named `systemd` hierarchy on v1).
_TREE = "systemd"


class SystemdCgroups:
    def __init__(self, units: SystemdUnits, root: Path = Path("/sys/fs/cgroup")) -> None:
        self._units = units
        self._root = root
        self._files = CgroupFs(root)

    def _directory(self, path: str) -> Path:
        # On a v1 host systemd's own tree is the named `systemd` hierarchy.
        tree = self._root if (self._root / "cgroup.controllers").exists() else self._root / "systemd"
        return tree / path.strip("/")

    def hierarchies(self) -> tuple[str, ...]:
        return (_TREE,)

    def exists(self, path: str) -> bool:
        return self._directory(path).is_dir()

    def missing(self, path: str) -> dict[str, tuple[str, ...]]:
        absent = tuple(level for level in cgroup_levels(path) if not self._directory(level).is_dir())
        return {_TREE: absent} if absent else {}

    def create(self, path: str) -> dict[str, tuple[str, ...]]:
        """Start the slice (systemd starts its parent slices with it, and is done when this returns); returns
        the levels that were missing before. A slice another pod started at the same moment is in both
        answers: slices are removed only when empty, so the last pod out removes it."""
        unit = _unit(path, ".slice")
        before = self.missing(path)
        if unit != "-.slice":
            self._units.start_slice(unit, {})
        return before

    def attach(self, path: str, pid: int) -> None:
        unit = _unit(path, ".scope")
        parent = path.rstrip("/").rsplit("/", 1)[0]
        self._units.start_scope(unit, _unit(parent, ".slice") if parent else "-.slice", [pid], {})

    def procs_files(self, path: str) -> list[str]:
        return [str(self._directory(path) / "cgroup.procs")]

    def remove(self, path: str, hierarchies: Collection[str] | None = None) -> None:
        if hierarchies is not None and _TREE not in hierarchies:
            return
        unit = path.rstrip("/").rsplit("/", 1)[-1]
        if not unit:
            return
        directory = self._directory(path)
        # Stopping a slice would kill whatever another pod still runs in it: like rmdir, refuse instead.
        # A scope is pycrio's own process group and is stopped with what is left in it.
        if unit.endswith(".slice") and directory.is_dir():
            try:
                children = [entry.name for entry in directory.iterdir() if entry.is_dir()]
                busy = bool(children or (directory / "cgroup.procs").read_text().split())
            except FileNotFoundError:
                # Another pod's removal stopped this shared parent while we looked: it is empty and gone.
                children, busy = [], False
            if busy:
                raise Internal(f"cgroup {path} still holds processes or child cgroups {children}")
        self._units.stop(unit)

    def oom_kills(self, path: str) -> int | None:
        return self._files.oom_kills(path)

    def set_limits(self, path: str, limits: CgroupLimits) -> None:
        unit = _unit(path, ".slice")
        if not self._units.active(unit):
            raise Internal(f"cgroup {path} does not exist (systemd unit {unit} is not active)")
        wanted = unit_properties(limits)
        old = {name: self._units.get_property(unit, name) for name in wanted}
        try:
            self._units.set_properties(unit, wanted)
        except NotFound:
            raise Internal(f"cgroup {path} does not exist (systemd unit {unit} is not loaded)") from None
        if limits.unified or limits.hugepage_limits:
            files = CgroupLimits(unified=limits.unified, hugepage_limits=limits.hugepage_limits)
            try:
                self._files.set_limits(path, files)
            except BaseException:
                self._units.set_properties(unit, old)
                raise


def unit_properties(limits: CgroupLimits) -> dict[str, PropertyValue]:
    """The systemd unit properties for cgroup limits given in v1 units (the CRI's)."""
    wanted: dict[str, PropertyValue] = {}
    if limits.cpu_shares:
        wanted["CPUWeight"] = shares_to_weight(limits.cpu_shares)
    if limits.cpu_quota_us or limits.cpu_period_us:
        period = limits.cpu_period_us or _DEFAULT_PERIOD_US
        if limits.cpu_period_us:
            wanted["CPUQuotaPeriodUSec"] = period
        if limits.cpu_quota_us:
            # systemd takes the quota per second of wall time.
            quota = limits.cpu_quota_us
            wanted["CPUQuotaPerSecUSec"] = UNLIMITED if quota < 0 else quota * 1_000_000 // period
    if limits.memory_limit_bytes:
        wanted["MemoryMax"] = limits.memory_limit_bytes
    if limits.cpuset_cpus:
        wanted["AllowedCPUs"] = parse_cpu_list("cpuset_cpus", limits.cpuset_cpus)
    if limits.cpuset_mems:
        wanted["AllowedMemoryNodes"] = parse_cpu_list("cpuset_mems", limits.cpuset_mems)
    return wanted


def parse_cpu_list(field: str, text: str) -> tuple[int, ...]:
    """`0-2,5` -> (0, 1, 2, 5), the kernel's list format."""
    indexes: set[int] = set()
    for part in text.split(","):
        first, _, last = part.strip().partition("-")
        if not first.isdigit() or (last and not last.isdigit()):
            raise InvalidArgument(f"{field}: {text!r} is not a list like 0-2,5")
        low, high = int(first), int(last or first)
        if high < low or high > 4095:
            raise InvalidArgument(f"{field}: {text!r} has a bad range {part!r}")
        indexes.update(range(low, high + 1))
    return tuple(sorted(indexes))


def _unit(path: str, suffix: str) -> str:
    name = path.rstrip("/").rsplit("/", 1)[-1] or "-.slice"
    if not name.endswith(suffix):
        raise InvalidArgument(f"cgroup {path!r} is not a systemd {suffix[1:]} for the systemd cgroup driver")
    return name

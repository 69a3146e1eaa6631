"""The Cgroups port on cgroupfs: every v1 hierarchy under the root, or the unified v2 tree.

Creation reports which directories it made in which hierarchy, so that a pod removes only its own.
v1 cpuset cgroups start with empty cpuset.cpus/mems and refuse processes until they are filled, so each new
level copies its parent's values (what runc does). Limits are written file by file; a refused write puts
back the files already written, so a cgroup never keeps half of an update.
"""

import errno
import os
from collections.abc import Collection
from pathlib import Path

from domain.cgroup_paths import cgroup_levels
from domain.errors import Internal, InvalidArgument
from ports.cgroups import CgroupLimits

# v2's cpu.max period when neither the update nor the file names one.
_DEFAULT_PERIOD_US = 100_000


class CgroupFs:
    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        self._root = root

    @property
    def unified(self) -> bool:
        return (self._root / "cgroup.controllers").exists()

    def _named(self) -> dict[str, Path]:
        """Each hierarchy by name: "." for a v2 root; on v1 the mount's directory name ("cpu,cpuacct" for
        both of its symlinks), with the unified tree of a hybrid host, which runc also joins."""
        if self.unified:
            return {".": self._root}
        named: dict[str, Path] = {}
        for entry in sorted(self._root.iterdir()):
            if not entry.is_dir():
                continue
            if entry.name == "unified" and not (entry / "cgroup.controllers").exists():
                continue
            named.setdefault(os.path.basename(os.path.realpath(entry)), entry)
        return named

    def _hierarchies(self) -> list[Path]:
        return list(self._named().values())

    def hierarchies(self) -> tuple[str, ...]:
        return tuple(self._named())

    @staticmethod
    def _relative(path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise InvalidArgument(f"cgroup path {path!r} is not a clean path below the root")
        return "/".join(parts)

    def exists(self, path: str) -> bool:
        relative = self._relative(path)
        return all((h / relative).is_dir() for h in self._hierarchies())

    def missing(self, path: str) -> dict[str, tuple[str, ...]]:
        levels = cgroup_levels(self._relative(path))
        absent = {
            name: tuple(level for level in levels if not (hierarchy / level.lstrip("/")).is_dir())
            for name, hierarchy in self._named().items()
        }
        return {name: levels for name, levels in absent.items() if levels}

    def create(self, path: str) -> dict[str, tuple[str, ...]]:
        levels = cgroup_levels(self._relative(path))
        made: dict[str, tuple[str, ...]] = {}
        for name, hierarchy in self._named().items():
            cpuset = (hierarchy / "cpuset.cpus").exists()
            mine = []
            for level in levels:
                current = hierarchy / level.lstrip("/")
                try:
                    current.mkdir()
                    mine.append(level)
                except FileExistsError:
                    pass
                if cpuset:
                    # Also for levels that exist: another pod may have made one a moment ago and not filled
                    # it yet.
                    _inherit_cpuset(current)
            if mine:
                made[name] = tuple(mine)
        return made

    def procs_files(self, path: str) -> list[str]:
        relative = self._relative(path)
        return [str(h / relative / "cgroup.procs") for h in self._hierarchies()]

    def remove(self, path: str, hierarchies: Collection[str] | None = None) -> None:
        relative = self._relative(path)
        for name, hierarchy in self._named().items():
            if hierarchies is not None and name not in hierarchies:
                continue
            target = hierarchy / relative
            try:
                target.rmdir()
            except FileNotFoundError:
                continue
            except OSError as err:
                if err.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    raise Internal(f"cgroup {target} still holds processes or child cgroups") from err
                raise Internal(f"cannot remove cgroup {target}: {err.strerror}") from err

    def set_limits(self, path: str, limits: CgroupLimits) -> None:
        relative = self._relative(path)
        if not self.exists(path):
            raise Internal(f"cgroup {path} does not exist")
        files = self._v2_files(relative, limits) if self.unified else self._v1_files(relative, limits)
        written: list[tuple[Path, str | None]] = []
        for target, value in files:
            try:
                old = _read(target)
                with open(target, "w") as handle:
                    handle.write(value)
            except OSError as err:
                _put_back(written)
                raise Internal(f"cannot write {value!r} to {target}: {err.strerror}") from err
            written.append((target, old))

    def _v1_files(self, relative: str, limits: CgroupLimits) -> list[tuple[Path, str]]:
        if limits.unified:
            raise InvalidArgument("unified: cgroup v2 files cannot be set on a cgroup v1 host")
        wanted = [
            ("cpu.shares", limits.cpu_shares),
            ("cpu.cfs_period_us", limits.cpu_period_us),
            ("cpu.cfs_quota_us", limits.cpu_quota_us),
            ("memory.limit_in_bytes", limits.memory_limit_bytes),
            ("cpuset.cpus", limits.cpuset_cpus),
            ("cpuset.mems", limits.cpuset_mems),
        ]
        files = [(self._v1_file(relative, name), str(value)) for name, value in wanted if value]
        for page, limit in limits.hugepage_limits:
            files.append((self._v1_file(relative, f"hugetlb.{page}.limit_in_bytes"), str(limit)))
        return files

    def _v1_file(self, relative: str, name: str) -> Path:
        controller = name.split(".", 1)[0]
        for hierarchy in self._hierarchies():
            if controller in os.path.basename(os.path.realpath(hierarchy)).split(","):
                return hierarchy / relative / name
        raise Internal(f"no cgroup v1 hierarchy has the {controller} controller")

    def _v2_files(self, relative: str, limits: CgroupLimits) -> list[tuple[Path, str]]:
        directory = self._root / relative
        files: list[tuple[Path, str]] = []
        if limits.cpu_shares:
            files.append((directory / "cpu.weight", str(shares_to_weight(limits.cpu_shares))))
        if limits.cpu_quota_us or limits.cpu_period_us:
            quota, period = (_read(directory / "cpu.max") or f"max {_DEFAULT_PERIOD_US}").split()
            if limits.cpu_quota_us:
                quota = "max" if limits.cpu_quota_us < 0 else str(limits.cpu_quota_us)
            files.append((directory / "cpu.max", f"{quota} {limits.cpu_period_us or period}"))
        if limits.memory_limit_bytes:
            files.append((directory / "memory.max", str(limits.memory_limit_bytes)))
        if limits.cpuset_cpus:
            files.append((directory / "cpuset.cpus", limits.cpuset_cpus))
        if limits.cpuset_mems:
            files.append((directory / "cpuset.mems", limits.cpuset_mems))
        for page, limit in limits.hugepage_limits:
            files.append((directory / f"hugetlb.{page}.max", str(limit)))
        for name, value in limits.unified:
            if not name or "/" in name or name.startswith("."):
                raise InvalidArgument(f"unified: {name!r} is not a cgroup file name")
            files.append((directory / name, value))
        return files


def shares_to_weight(shares: int) -> int:
    """cgroup v1 cpu.shares (2..262144) as v2 cpu.weight (1..10000), runc's conversion."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


def _put_back(written: list[tuple[Path, str | None]]) -> None:
    """Best effort, newest first: the caller reports the write that failed, not these."""
    for target, old in reversed(written):
        try:
            if old is None:
                target.unlink()  # it did not exist: only in trees that are not cgroupfs
            else:
                target.write_text(old)
        except OSError:
            continue


def _inherit_cpuset(cgroup: Path) -> None:
    for name in ("cpuset.cpus", "cpuset.mems"):
        own, parent = cgroup / name, cgroup.parent / name
        try:
            if own.read_text().strip():
                continue
            own.write_text(parent.read_text().strip() or "\n")
        except FileNotFoundError:
            continue  # not a v1 cpuset level (or a test tree without the files)

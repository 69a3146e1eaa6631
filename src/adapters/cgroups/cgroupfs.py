"""The Cgroups port on cgroupfs: every v1 hierarchy under the root, or the unified v2 tree.

v1 cpuset cgroups start with empty cpuset.cpus/mems and refuse processes until they are filled, so each new
level copies its parent's values (what runc does).
"""

import contextlib
import errno
import os
from pathlib import Path

from domain.errors import Internal, InvalidArgument


class CgroupFs:
    def __init__(self, root: Path = Path("/sys/fs/cgroup")) -> None:
        self._root = root

    @property
    def unified(self) -> bool:
        return (self._root / "cgroup.controllers").exists()

    def _hierarchies(self) -> list[Path]:
        if self.unified:
            return [self._root]
        seen: dict[str, Path] = {}
        for entry in sorted(self._root.iterdir()):
            if entry.name == "unified" or not entry.is_dir():
                continue
            seen.setdefault(os.path.realpath(entry), entry)
        return list(seen.values())

    @staticmethod
    def _relative(path: str) -> str:
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") for p in parts):
            raise InvalidArgument(f"cgroup path {path!r} is not a clean path below the root")
        return "/".join(parts)

    def exists(self, path: str) -> bool:
        relative = self._relative(path)
        return all((h / relative).is_dir() for h in self._hierarchies())

    def create(self, path: str) -> None:
        relative = self._relative(path)
        for hierarchy in self._hierarchies():
            current = hierarchy
            cpuset = (hierarchy / "cpuset.cpus").exists()
            for part in relative.split("/"):
                current = current / part
                with contextlib.suppress(FileExistsError):
                    current.mkdir()
                if cpuset:
                    # Also for levels that exist: another pod may have made one a moment ago and not filled
                    # it yet.
                    _inherit_cpuset(current)

    def procs_files(self, path: str) -> list[str]:
        relative = self._relative(path)
        return [str(h / relative / "cgroup.procs") for h in self._hierarchies()]

    def remove(self, path: str) -> None:
        relative = self._relative(path)
        for hierarchy in self._hierarchies():
            target = hierarchy / relative
            try:
                target.rmdir()
            except FileNotFoundError:
                continue
            except OSError as err:
                if err.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    raise Internal(f"cgroup {target} still holds processes or child cgroups") from err
                raise Internal(f"cannot remove cgroup {target}: {err.strerror}") from err


def _inherit_cpuset(cgroup: Path) -> None:
    for name in ("cpuset.cpus", "cpuset.mems"):
        own, parent = cgroup / name, cgroup.parent / name
        try:
            if own.read_text().strip():
                continue
            own.write_text(parent.read_text().strip() or "\n")
        except FileNotFoundError:
            continue  # not a v1 cpuset level (or a test tree without the files)

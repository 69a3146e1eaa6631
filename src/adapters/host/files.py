"""HostFiles on the real host: realpath, stat of device nodes, the /dev tree, small files."""

import contextlib
import os
import stat
from pathlib import Path

from adapters.host.regular_files import read_regular_file
from domain.errors import InvalidArgument
from domain.oci_spec import HostDevice
from ports.host_files import MAX_TEXT_FILE

_SKIPPED_DEV_DIRS = {"pts", "shm", "mqueue", "hugepages"}


class RealHostFiles:
    def __init__(self, dev_root: Path = Path("/dev")) -> None:
        self._dev_root = dev_root

    def resolve(self, path: str) -> str | None:
        if not os.path.lexists(path):
            return None
        real = os.path.realpath(path)
        return real if os.path.exists(real) else None

    def device(self, path: str) -> HostDevice | None:
        try:
            info = os.stat(path)
        except OSError:
            return None
        if stat.S_ISCHR(info.st_mode):
            kind = "c"
        elif stat.S_ISBLK(info.st_mode):
            kind = "b"
        else:
            return None
        return HostDevice(path, kind, os.major(info.st_rdev), os.minor(info.st_rdev),
                          stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid)  # fmt: skip

    def all_devices(self) -> tuple[HostDevice, ...]:
        found = []
        for directory, dirs, files in os.walk(self._dev_root):
            dirs[:] = [d for d in dirs if d not in _SKIPPED_DEV_DIRS]
            for name in files:
                path = os.path.join(directory, name)
                if os.path.islink(path):
                    continue
                device = self.device(path)
                if device is not None and name not in ("console", "ptmx", "tty"):
                    found.append(device)
        return tuple(sorted(found, key=lambda d: d.path))

    def read_text(self, path: str) -> str | None:
        data = read_regular_file(path, MAX_TEXT_FILE)
        if data is None:
            return None
        try:
            return data.decode()
        except UnicodeDecodeError:
            raise InvalidArgument(f"{path[:200]}: not UTF-8 text") from None

    def remove_if_empty(self, path: str) -> None:
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return
        with contextlib.suppress(FileNotFoundError, OSError):
            if stat.S_ISDIR(info.st_mode):
                os.rmdir(path)  # refuses a directory that is not empty
            elif stat.S_ISREG(info.st_mode) and info.st_size == 0:
                os.unlink(path)

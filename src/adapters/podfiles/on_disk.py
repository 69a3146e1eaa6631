"""The PodFiles port on the host: files under <run_dir>/pods/<id>/files and a tmpfs for /dev/shm.

The shm tmpfs is 64 MiB by default (cri-o's default), nosuid, nodev, noexec, mode 1777, as Docker and
cri-o mount it.
"""

import contextlib
import errno
import os
import shutil
from pathlib import Path

from adapters.namespaces import linux
from domain.names import check_plain_name
from ports.pod_files import PodFileContents, PodFilePaths


class PodFilesOnDisk:
    def __init__(
        self,
        run_dir: Path,
        node_hosts: Path = Path("/etc/hosts"),
        node_resolv: Path = Path("/etc/resolv.conf"),
    ) -> None:
        self._pods = run_dir / "pods"
        self._node_hosts = node_hosts
        self._node_resolv = node_resolv

    def _dir(self, sandbox_id: str) -> Path:
        return self._pods / check_plain_name("sandbox id", sandbox_id) / "files"

    def write(self, sandbox_id: str, contents: PodFileContents) -> PodFilePaths:
        directory = self._dir(sandbox_id)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        paths = PodFilePaths(
            hostname=str(directory / "hostname"),
            hosts=str(directory / "hosts"),
            resolv_conf=str(directory / "resolv.conf"),
            shm=str(directory / "shm") if contents.private_shm else "/dev/shm",
        )
        _write(paths.hostname, contents.hostname + "\n")
        _write(paths.hosts, contents.hosts if contents.hosts is not None else _read(self._node_hosts))
        _write(
            paths.resolv_conf,
            contents.resolv_conf if contents.resolv_conf is not None else _read(self._node_resolv),
        )
        if contents.log_directory:
            os.makedirs(contents.log_directory, mode=0o700, exist_ok=True)
        if contents.private_shm and not os.path.ismount(paths.shm):
            os.makedirs(paths.shm, mode=0o1777, exist_ok=True)
            linux.mount(
                "shm",
                paths.shm,
                "tmpfs",
                linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                f"mode=1777,size={contents.shm_size_bytes}",
            )
        return paths

    def remove(self, sandbox_id: str) -> None:
        directory = self._dir(sandbox_id)
        if not directory.exists():
            return
        shm = directory / "shm"
        while os.path.ismount(shm):
            try:
                linux.umount2(str(shm), linux.MNT_DETACH)
            except OSError as err:
                if err.errno != errno.EINVAL:
                    raise
                break
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _write(path: str, text: str) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)

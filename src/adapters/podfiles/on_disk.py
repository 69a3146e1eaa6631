"""The PodFiles port on the host: files under <run_dir>/pods/<id>/files and a tmpfs for /dev/shm.

The shm tmpfs is 64 MiB by default (cri-o's default), nosuid, nodev, noexec, mode 1777, as Docker and
cri-o mount it. Which log directories a pod made is recorded in `records_dir` (on disk in the daemon): the
run dir is a tmpfs that a reboot empties, and the pod's log directory is still removed with it after one.
"""

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path

from adapters.host import no_symlinks
from adapters.namespaces import linux
from domain.errors import InvalidArgument
from domain.names import check_plain_name
from ports.pod_files import PodFileContents, PodFilePaths

# Which directories of the kubelet's log directory this pod made (the rest was there and stays).
_LOG_DIRECTORIES = "log-directories.json"


class PodFilesOnDisk:
    def __init__(
        self,
        run_dir: Path,
        node_hosts: Path = Path("/etc/hosts"),
        node_resolv: Path = Path("/etc/resolv.conf"),
        records_dir: Path | None = None,  # None: in the pod's files dir (gone with the run dir)
    ) -> None:
        self._pods = run_dir / "pods"
        self._records = records_dir
        self._node_hosts = node_hosts
        self._node_resolv = node_resolv

    def _dir(self, sandbox_id: str) -> Path:
        return self._pods / check_plain_name("sandbox id", sandbox_id) / "files"

    def _log_record(self, sandbox_id: str) -> Path:
        if self._records is None:
            return self._dir(sandbox_id) / _LOG_DIRECTORIES
        return self._records / f"{check_plain_name('sandbox id', sandbox_id)}.{_LOG_DIRECTORIES}"

    def write(self, sandbox_id: str, contents: PodFileContents) -> PodFilePaths:
        directory = self._dir(sandbox_id)
        directory.mkdir(parents=True, exist_ok=True, mode=0o755)
        paths = PodFilePaths(
            hostname=str(directory / "hostname"),
            hosts=str(directory / "hosts"),
            resolv_conf=str(directory / "resolv.conf"),
            shm=str(directory / "shm") if contents.private_shm else "/dev/shm",
        )
        owner = contents.owner
        _write(paths.hostname, contents.hostname + "\n", owner=owner)
        hosts = contents.hosts if contents.hosts is not None else _read(self._node_hosts)
        _write(paths.hosts, hosts, owner=owner)
        resolv = contents.resolv_conf if contents.resolv_conf is not None else _read(self._node_resolv)
        _write(paths.resolv_conf, resolv, owner=owner)
        if contents.log_directory:
            record = self._log_record(sandbox_id)
            if not record.exists():  # a rewrite must not forget what the first write made
                try:
                    created = no_symlinks.make_directories(contents.log_directory, 0o700)
                except InvalidArgument as err:
                    raise InvalidArgument(f"PodSandboxConfig.log_directory: {err}") from None
                record.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                _write(str(record), json.dumps(created), 0o600)
        if contents.private_shm and not os.path.ismount(paths.shm):
            os.makedirs(paths.shm, mode=0o1777, exist_ok=True)
            linux.mount(
                "shm",
                paths.shm,
                "tmpfs",
                linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC,
                f"mode=1777,size={contents.shm_size_bytes},uid={owner[0]},gid={owner[1]}",
            )
        return paths

    def remove(self, sandbox_id: str) -> None:
        directory = self._dir(sandbox_id)
        record = self._log_record(sandbox_id)
        _remove_log_directories(record)  # also after a reboot emptied the run dir
        with contextlib.suppress(FileNotFoundError):
            record.unlink()
        if not directory.exists():
            return
        _remove_log_directories(directory / _LOG_DIRECTORIES)  # where a record was kept before
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


def _remove_log_directories(record: Path) -> None:
    """The log directory and its parents, where this pod's write made them (not the kubelet)."""
    try:
        created = json.loads(record.read_text())
    except (FileNotFoundError, ValueError):
        return
    if isinstance(created, list) and all(isinstance(p, str) for p in created):
        no_symlinks.remove_directories(created)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _write(path: str, text: str, mode: int = 0o644, owner: tuple[int, int] = (0, 0)) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    if owner != (0, 0):
        os.chown(tmp, *owner)
    os.replace(tmp, path)

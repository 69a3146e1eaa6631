"""The Namespaces port: network, IPC and UTS namespaces pinned by bind mounts under <run_dir>/pods/<id>/ns.

The pinning runs in the compiled helper (`pycrio-ns pin`, see ns_helper.py) through the runner, with a
timeout; removal unmounts in the daemon (umount2 needs no namespace switch).
"""

import contextlib
import errno
import os
import shutil
from pathlib import Path

from adapters.namespaces import linux
from adapters.namespaces.ns_helper import BUILT_HELPER, EXIT_BAD_SYSCTL, run_helper
from adapters.process import runner
from domain.errors import InvalidArgument
from domain.names import check_plain_name
from ports.namespaces import NamespaceRequest, PodNamespaces

# The user namespace, when there is one, is made first and pinned as "user" (see pycrio-ns.c).
_KINDS = ("net", "ipc", "uts", "user")


class PinnedNamespaces:
    def __init__(self, run_dir: Path, timeout: float, helper: str = BUILT_HELPER) -> None:
        self._pods = run_dir / "pods"
        self._timeout = timeout
        self._helper = helper

    def _dir(self, sandbox_id: str) -> Path:
        return self._pods / check_plain_name("sandbox id", sandbox_id) / "ns"

    def create(self, sandbox_id: str, request: NamespaceRequest) -> PodNamespaces:
        directory = self._dir(sandbox_id)
        kinds = [
            k
            for k, wanted in zip(_KINDS[:3], (request.network, request.ipc, request.uts), strict=True)
            if wanted
        ]
        if not kinds and request.sysctls:
            raise InvalidArgument("sysctls need a namespace of the pod's own")
        if not kinds:
            return PodNamespaces()
        if directory.exists():
            self.remove(sandbox_id)  # left by a creation that was cut short
        directory.mkdir(parents=True, mode=0o700)
        args = ["--dir", str(directory), "--hostname", request.hostname]
        for kind in kinds:
            args += ["--ns", kind]
        for name, value in sorted(request.sysctls.items()):
            args += ["--sysctl", f"{name}={value}"]
        userns = request.user_namespace
        if userns is not None:
            # "container host length" lines of /proc/<pid>/uid_map, comma-separated on the command line.
            args += ["--uid-map", ",".join(m.line().strip() for m in userns.uids)]
            args += ["--gid-map", ",".join(m.line().strip() for m in userns.gids)]
        try:
            result = run_helper(self._helper, ["pin", *args], self._timeout, check=False)
            if result.returncode == EXIT_BAD_SYSCTL:
                raise InvalidArgument(result.stderr.decode(errors="replace").strip())
            if result.returncode != 0:
                raise runner.CommandFailed(result)
        except BaseException:
            self.remove(sandbox_id)
            raise
        return PodNamespaces(
            network=str(directory / "net") if request.network else "",
            ipc=str(directory / "ipc") if request.ipc else "",
            uts=str(directory / "uts") if request.uts else "",
            user=str(directory / "user") if userns is not None else "",
        )

    def exists(self, path: str) -> bool:
        """True when `path` is an nsfs file (a pinned namespace), not the empty file under it."""
        try:
            return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
        except OSError:
            return False

    def remove(self, sandbox_id: str) -> None:
        directory = self._dir(sandbox_id)
        if not directory.exists():
            return
        for kind in _KINDS:
            target = directory / kind
            try:
                linux.umount2(str(target), linux.MNT_DETACH)
            except OSError as err:
                if err.errno not in (errno.EINVAL, errno.ENOENT):
                    raise
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the pod dir, once its other parts are gone

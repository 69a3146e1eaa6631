"""The InfraProcesses port: catatonit started by the compiled helper (`pycrio-ns infra`, see ns_helper.py),
no OCI runtime and no image involved.

The helper records "<pid> <start time>" in <run_dir>/pods/<id>/infra/pid before it returns, so a daemon
that crashed right after starting it can still find and stop it.
"""

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Collection
from pathlib import Path

from adapters.namespaces.ns_helper import BUILT_HELPER, run_helper
from adapters.process.liveness import ProcessLiveness
from domain.errors import DeadlineExceeded, Internal
from domain.names import check_plain_name
from ports.infra import InfraProcess, InfraSpec


class CatatonitInfra:
    def __init__(
        self,
        run_dir: Path,
        init_path: str,
        timeout: float,
        helper: str = BUILT_HELPER,
        liveness: ProcessLiveness | None = None,
    ) -> None:
        self._pods = run_dir / "pods"
        self._init = init_path
        self._helper = helper
        self._timeout = timeout
        # Shared with the PidfdExitWatcher, which sleeps until one of the watched processes exits.
        self._liveness = liveness or ProcessLiveness()

    def _dir(self, sandbox_id: str) -> Path:
        return self._pods / check_plain_name("sandbox id", sandbox_id) / "infra"

    def start(self, spec: InfraSpec) -> InfraProcess:
        if not os.access(self._init, os.X_OK):
            raise Internal(f"infra init {self._init} is not an executable (runtime.infra_init)")
        directory = self._dir(spec.sandbox_id)
        rootfs = directory / "rootfs"
        rootfs.mkdir(parents=True, exist_ok=True, mode=0o700)
        args = ["--rootfs", str(rootfs), "--init", self._init, "--pid-file", str(directory / "pid")]
        for kind, path in (("user", spec.user), ("net", spec.network), ("ipc", spec.ipc), ("uts", spec.uts)):
            if path:
                args += [f"--{kind}", path]
        if spec.new_pid_namespace:
            args.append("--new-pid")
        for procs in spec.cgroup_procs:
            args += ["--cgroup-procs", procs]
        result = run_helper(self._helper, ["infra", *args], self._timeout)
        pid, start_time = result.stdout.split()
        process = InfraProcess(pid=int(pid), start_time=int(start_time))
        self.alive(process)  # watched from now on, not from the first look at it
        return process

    def find(self, sandbox_id: str) -> InfraProcess | None:
        try:
            pid, start_time = (self._dir(sandbox_id) / "pid").read_text().split()
        except (OSError, ValueError):
            return None
        return InfraProcess(pid=int(pid), start_time=int(start_time))

    def alive(self, process: InfraProcess) -> bool:
        return self._liveness.alive(process.pid, process.start_time)

    def exited(self, processes: Collection[InfraProcess]) -> set[InfraProcess]:
        gone = self._liveness.exited([(process.pid, process.start_time) for process in processes])
        if not gone:  # the usual answer: no map back from keys to processes needed
            return set()
        return {process for process in processes if (process.pid, process.start_time) in gone}

    def stop(self, sandbox_id: str, process: InfraProcess | None, timeout: float) -> None:
        process = process or self.find(sandbox_id)
        if process is not None:
            self._kill(process, timeout)
            self._liveness.forget(process.pid, process.start_time)
        directory = self._dir(sandbox_id)
        shutil.rmtree(directory, ignore_errors=True)
        with contextlib.suppress(OSError):
            directory.parent.rmdir()  # the pod dir, once its other parts are gone

    def _kill(self, process: InfraProcess, timeout: float) -> None:
        if self.alive(process):
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)
        deadline = time.monotonic() + timeout
        while self.alive(process):
            if time.monotonic() > deadline:
                raise DeadlineExceeded(f"infra process {process.pid} did not exit within {timeout:g}s")
            time.sleep(0.02)

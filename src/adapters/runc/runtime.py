"""OciRuntime over the runc command line; crun takes the same commands, so one class serves both.

Interactive execs (streaming Exec) run through `exec_streams.py`, ExecSync through `exec_sync.py`, each
with its process spec and pid file in a private directory under `scratch_dir`.

Every call goes through adapters/process/runner.py with the configured timeout. Errors that only mean
"already in the wanted state" (a kill of a stopped container, a delete of an unknown one) are not errors.

Checkpoints: the runtime drives CRIU (`criu` on PATH), so whether they work here is asked of both: the
runtime must have a `checkpoint` command and `criu check` must pass on this kernel. crun talks to CRIU
through libcriu, which Debian's crun loads only when it checkpoints: for crun that library is asked
for too, or a runtime reported able would fail its first checkpoint ("could not load `libcriu.so.2`").
"""

import ctypes.util
import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapters.process import runner
from adapters.runc.exec_streams import exec_with_streams
from adapters.runc.exec_sync import exec_sync
from adapters.tracing.spans import span
from domain.errors import DeadlineExceeded, FailedPrecondition, Internal, NotFound
from ports.oci_runtime import ExecResult, RuntimeState
from ports.streaming import ProcessStreams

_GONE = ("does not exist", "not found", "no such file")
# runc's wording, then crun's ("the container `x` is not in `created` or `stopped` state").
_WRONG_STATE = (
    "cannot start", "not stopped", "is not running", "is stopped", "paused", "is not in `created`",
)  # fmt: skip
# The last: runc 1.1's `kill --all` freezes the cgroup first and says so when the container stopped meanwhile.
_NOT_RUNNING = (
    "not running", "process already finished", "container not running", "no such process",
    "invalid state transition from stopped",
)  # fmt: skip


_CRIU_LOG_TAIL = 2000  # characters of CRIU's dump.log put into a failed checkpoint's error


def _matches(result: runner.CommandResult, needles: tuple[str, ...]) -> bool:
    text = (result.stderr + result.stdout).decode(errors="replace").lower()
    return any(needle in text for needle in needles)


@dataclass(frozen=True)
class RuncRuntime:
    binary: str
    root: str  # the runtime's state directory (its --root)
    timeout: float = 120.0
    systemd_cgroup: bool = False
    scratch_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "pycrio-exec")

    def _args(self, *args: str) -> list[str]:
        base = [self.binary, "--root", self.root]
        if self.systemd_cgroup:
            base.append("--systemd-cgroup")
        return base + list(args)

    def _run(self, *args: str, check: bool = True) -> runner.CommandResult:
        with span(f"runtime.{args[0]}", **{"runtime.binary": self.binary}):
            return runner.run(self._args(*args), timeout=self.timeout, check=check)

    def create(self, container_id: str, bundle: Path, pid_file: Path) -> None:
        # The container's init keeps the stdio it is given: never hand it a pipe we wait on.
        with span("runtime.create", **{"runtime.binary": self.binary}), tempfile.TemporaryFile() as errors:
            process = runner.spawn(
                self._args("create", "--bundle", str(bundle), "--pid-file", str(pid_file), container_id),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
            )
            try:
                returncode = runner.wait(process, self.timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise DeadlineExceeded(f"{self.binary} create {container_id} timed out") from None
            finally:
                runner.release(process)
            errors.seek(0)
            detail = errors.read().decode(errors="replace").strip()
        if returncode != 0:
            raise Internal(f"{Path(self.binary).name} create {container_id} exited {returncode}: {detail}")

    def start(self, container_id: str) -> None:
        self._check(self._run("start", container_id, check=False), container_id)

    def _check(self, result: runner.CommandResult, container_id: str) -> None:
        """A failed command as the port's errors: an unknown container, a container in the wrong state."""
        if result.returncode != 0:
            if _matches(result, _GONE):
                raise NotFound(f"container {container_id} is not known to {Path(self.binary).name}")
            if _matches(result, _WRONG_STATE):
                raise FailedPrecondition(str(runner.CommandFailed(result)))
            raise runner.CommandFailed(result)

    def state(self, container_id: str) -> RuntimeState | None:
        result = self._run("state", container_id, check=False)
        if result.returncode != 0:
            if _matches(result, _GONE):
                return None
            raise runner.CommandFailed(result)
        data = json.loads(result.stdout)
        return RuntimeState(data["id"], data["status"], int(data.get("pid") or 0), data.get("bundle", ""))

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        args = ["kill", *(["--all"] if all_processes else []), container_id, str(signal)]
        result = self._run(*args, check=False)
        if result.returncode != 0 and not _matches(result, _GONE + _NOT_RUNNING):
            raise runner.CommandFailed(result)

    def delete(self, container_id: str, force: bool = False) -> None:
        result = self._run("delete", *(["--force"] if force else []), container_id, check=False)
        if result.returncode != 0 and not _matches(result, _GONE):
            if _matches(result, _WRONG_STATE):
                raise FailedPrecondition(str(runner.CommandFailed(result)))
            raise runner.CommandFailed(result)

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
            json.dump(dict(resources), handle)
            handle.flush()
            result = self._run("update", "--resources", handle.name, container_id, check=False)
        self._check(result, container_id)

    def exec(self, container_id: str, process: Mapping[str, Any], streams: ProcessStreams) -> int:
        return exec_with_streams(self._args(), container_id, process, streams, self.scratch_dir)

    def exec_sync(self, container_id: str, process: Mapping[str, Any], timeout: float) -> ExecResult:
        with span("runtime.exec_sync", **{"runtime.binary": self.binary}):
            return exec_sync(self._args(), container_id, process, timeout, self.scratch_dir)

    def checkpoint_support(self) -> str:
        name = Path(self.binary).name
        help_text = self._run("checkpoint", "--help", check=False)
        if help_text.returncode != 0:
            detail = (help_text.stderr + help_text.stdout).decode(errors="replace").strip()
            return f"{name} has no checkpoint command ({detail})"
        if self._calls_itself() == "crun" and ctypes.util.find_library("criu") is None:
            return f"{name} loads libcriu.so.2 to checkpoint, and it is not installed (Debian: libcriu2)"
        criu = shutil.which("criu")
        if criu is None:
            return f"criu is not installed ({name} checkpoint runs it from PATH)"
        result = runner.run([criu, "check"], timeout=self.timeout, check=False)
        if result.returncode != 0:
            lines = (result.stderr + result.stdout).decode(errors="replace").splitlines()
            output = "; ".join(line.strip() for line in lines if line.strip())  # one line for a status
            return f"`criu check` exited {result.returncode}: {output}"
        return ""

    def _calls_itself(self) -> str:
        """The name in `--version`'s first line: which runtime this is, whatever its binary is called."""
        result = runner.run([self.binary, "--version"], timeout=self.timeout, check=False)
        words = result.stdout.decode(errors="replace").split(maxsplit=1)
        return words[0] if result.returncode == 0 and words else Path(self.binary).name

    def checkpoint(
        self, container_id: str, image_path: Path, work_path: Path, leave_running: bool, timeout: float
    ) -> None:
        args = [
            "checkpoint", "--file-locks", "--image-path", str(image_path), "--work-path", str(work_path),
            *(["--leave-running"] if leave_running else []), container_id,
        ]  # fmt: skip
        with span("runtime.checkpoint", **{"runtime.binary": self.binary}):
            result = runner.run(self._args(*args), timeout=timeout, check=False)
        if result.returncode == 0:
            return
        if _matches(result, _GONE):
            raise NotFound(f"container {container_id} is not known to {Path(self.binary).name}")
        if _matches(result, _WRONG_STATE):
            raise FailedPrecondition(str(runner.CommandFailed(result)))
        log = work_path / "dump.log"
        tail = log.read_text(errors="replace")[-_CRIU_LOG_TAIL:].strip() if log.is_file() else ""
        failed = runner.CommandFailed(result)
        raise Internal(f"{failed}; CRIU's dump.log ends: {tail}" if tail else str(failed))

"""ExecSync: `<runtime> exec --detach --process` on two pipes, the process waited for by the daemon itself.

cri-o runs ExecSync under `conmon --exec`; here conmon added about 10 ms to a 13 ms `runc exec` (its own
start-up, then a log file to parse back), which kept ExecSync above containerd's. containerd's shim does
what this does: the runtime starts the process detached, handing it our pipes as its stdout and stderr,
writes its host pid to the pid file and exits; the process is then this daemon's child (the daemon is a
subreaper, runc's parent), so its exit status comes from waitpid. The orphan reaper is told to leave it
alone (runner.claiming). A runtime that exits non-zero or names no process could not start it (no such
executable, container gone): an Internal error with the runtime's message.

The exec ends when the process exits, not at EOF of the pipes, which a background child of the command may
hold open forever; what is in the pipes then is read without waiting. Output is read as it comes, so a
chatty command never blocks on a full pipe: both streams are kept up to MAX_EXEC_OUTPUT and the rest is
counted and dropped. Past the timeout the process tree is killed and reaped before this returns (critest
looks for it with pgrep right after).
"""

import contextlib
import json
import os
import select
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters.process import runner
from adapters.process.tree import kill_tree
from adapters.runc.exec_streams import read_pid, shell_exit_code, spawn_detached
from domain.errors import Internal
from ports.oci_runtime import MAX_EXEC_OUTPUT, ExecResult

_CHUNK = 64 * 1024
_KILLED_GONE_TIMEOUT = 5.0


class _Output:
    """Both streams, read as they come and each kept up to the cap; `result` cuts them together the way
    cri-o does."""

    def __init__(self, stdout_fd: int, stderr_fd: int) -> None:
        self._fds = (stdout_fd, stderr_fd)
        self._open = set(self._fds)
        self._kept = {stdout_fd: bytearray(), stderr_fd: bytearray()}
        self._seen = 0
        for fd in self._fds:
            os.set_blocking(fd, False)

    def until_exit(self, pid: int, deadline: float | None) -> bool:
        """Read until process `pid` (a child of ours) exits: True, or `deadline` passes: False."""
        pidfd = os.pidfd_open(pid)
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            for fd in self._open:
                poller.register(fd, select.POLLIN)
            while True:
                wait_ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000) + 1)
                events = poller.poll(wait_ms)
                if not events and deadline is not None and time.monotonic() >= deadline:
                    return False
                for fd, _ in events:
                    if fd == pidfd:
                        return True
                    if fd in self._open and self._read(fd) == 0:
                        poller.unregister(fd)
                        self._open.discard(fd)
        finally:
            os.close(pidfd)

    def drain(self) -> None:
        """Read what is in the pipes now, without waiting for more."""
        for fd in list(self._open):
            while (got := self._read(fd)) > 0:
                pass
            if got == 0:
                self._open.discard(fd)

    def _read(self, fd: int) -> int:
        """One read: the bytes read, 0 at EOF, -1 when nothing is there right now."""
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:
            return -1
        self._seen += len(chunk)
        kept = self._kept[fd]
        room = MAX_EXEC_OUTPUT - len(kept)
        if room > 0:
            kept += chunk[:room]
        return len(chunk)

    def result(self) -> tuple[bytes, bytes, bool]:
        stdout, stderr = (bytes(self._kept[fd]) for fd in self._fds)
        if self._seen <= MAX_EXEC_OUTPUT:
            return stdout, stderr, False
        stdout = stdout[:MAX_EXEC_OUTPUT]
        return stdout, stderr[: MAX_EXEC_OUTPUT - len(stdout)], True


def exec_sync(
    runtime_args: list[str], container_id: str, process: Mapping[str, Any], timeout: float, scratch_dir: Path
) -> ExecResult:
    scratch_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout if timeout > 0 else None
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix=f"sync-{container_id[:12]}-") as work:
        spec, pid_file = Path(work) / "process.json", Path(work) / "pid"
        spec.write_text(json.dumps(process))
        args = [*runtime_args, "exec", "--detach", "--process", str(spec), "--pid-file", str(pid_file)]
        with runner.claiming(pid_file):
            runtime = spawn_detached([*args, container_id], container_id, stderr=subprocess.PIPE)
            assert runtime.stdout is not None and runtime.stderr is not None
            output = _Output(runtime.stdout.fileno(), runtime.stderr.fileno())
            try:
                return _run(runtime, output, pid_file, deadline, container_id)
            finally:
                runtime.stdout.close()
                runtime.stderr.close()
                runner.release(runtime)


def _run(
    runtime: subprocess.Popen[bytes],
    output: _Output,
    pid_file: Path,
    deadline: float | None,
    container_id: str,
) -> ExecResult:
    if not output.until_exit(runtime.pid, deadline):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runtime.pid, signal.SIGKILL)  # the runtime and whatever it started so far
        runtime.wait()
        pid = read_pid(pid_file)
        if pid:
            kill_tree(pid)
            runner.wait_gone(pid, _KILLED_GONE_TIMEOUT)
        return _timed_out(output)
    returncode = runtime.wait()
    pid = read_pid(pid_file)
    if returncode != 0 or not pid:
        output.drain()
        stdout, stderr, _ = output.result()
        detail = (stderr or stdout).decode(errors="replace").strip()
        raise Internal(f"exec in {container_id} failed: {detail or f'runtime exited {returncode}'}")
    try:
        finished = output.until_exit(pid, deadline)
        if not finished:
            kill_tree(pid)
            runner.wait_gone(pid, _KILLED_GONE_TIMEOUT)
            return _timed_out(output)
        _, status = os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        raise Internal(
            f"exec in {container_id}: process {pid} was reaped elsewhere; its exit is unknown"
        ) from None
    output.drain()  # what the process wrote before it exited is in the pipes now
    stdout, stderr, truncated = output.result()
    return ExecResult(shell_exit_code(os.waitstatus_to_exitcode(status)), stdout, stderr, truncated=truncated)


def _timed_out(output: _Output) -> ExecResult:
    output.drain()
    stdout, stderr, truncated = output.result()
    return ExecResult(-1, stdout, stderr, timed_out=True, truncated=truncated)

"""ContainerMonitor over conmon: create through the runtime, CRI logs, exit files, ExecSync, log reopen.

conmon talks to its parent through two inherited pipes named by environment variables: the start pipe
(conmon waits for one byte before running the runtime) and the sync pipe (conmon answers with JSON:
`{"pid": N}` after create). conmon double-forks and
outlives the daemon (which is a subreaper, so the orphan is reaped); its files are kept per container in
`<persist_root>/<id>/`: conmon.pid, `exit`, `oom` (written when the cgroup OOM-killed the container) and
`bundle` (where the ctl fifo lives).

Each conmon is watched through a pidfd in `liveness` (shared with the daemon's PidfdExitWatcher), so that a
conmon killed before it could write the exit file is noticed at once; after that the container's own
process is watched in its place (`watch_process`).
"""

import contextlib
import json
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from adapters.conmon import ctl, log_check
from adapters.conmon.attach import attach
from adapters.host import no_symlinks
from adapters.namespaces.linux import process_start_time
from adapters.process import runner
from adapters.process.liveness import ProcessLiveness
from adapters.process.tree import kill_tree
from adapters.readiness import wait_readable
from adapters.tracing.spans import span
from domain.errors import DeadlineExceeded, FailedPrecondition, Internal, InvalidArgument, NotFound
from ports.container_monitor import Created, ExitStatus, MonitoredCreate
from ports.streaming import ProcessStreams

_LOG_PATH_CHECKED = "log_path_checked"  # in the persist dir: the log path came with the request
_REOPEN_LOG_TIMEOUT = 10.0


@dataclass(frozen=True)
class ConmonMonitor:
    conmon: str
    persist_root: Path
    exits_dir: Path
    sockets_dir: Path
    log_level: str = "error"
    liveness: ProcessLiveness = field(default_factory=ProcessLiveness, compare=False, repr=False)
    # The (pid, start time) watched per container: its conmon, or its own process once conmon is lost.
    _watched: dict[str, tuple[int, int]] = field(default_factory=dict, init=False, compare=False, repr=False)
    _watched_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, compare=False, repr=False
    )

    def _persist(self, container_id: str) -> Path:
        return self.persist_root / container_id

    def _base_args(self, request: MonitoredCreate) -> list[str]:
        args = [
            self.conmon,
            "-c", request.container_id,
            "-n", request.name,
            "-r", request.runtime_binary,
            "--runtime-arg", f"--root={request.runtime_root}",
            "--socket-dir-path", str(self.sockets_dir),
            "--log-level", self.log_level,
        ]  # fmt: skip
        if request.systemd_cgroup:
            args.append("-s")
        return args

    def _launch(
        self, args: list[str], cwd: Path, timeout: float, stdout: Any = subprocess.DEVNULL
    ) -> tuple[subprocess.Popen[bytes], int, int]:
        """Start conmon with its two pipes; returns (process, sync pipe read end, start pipe write end)."""
        sync_r, sync_w = os.pipe()
        start_r, start_w = os.pipe()
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "_OCI_SYNCPIPE": str(sync_w),
            "_OCI_STARTPIPE": str(start_r),
        }
        try:
            with span("monitor.start"):
                process = runner.spawn(
                    args,
                    cwd=str(cwd),
                    env=env,
                    pass_fds=(sync_w, start_r),
                    stdin=subprocess.DEVNULL,
                    stdout=stdout,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
        except OSError as exc:
            for fd in (sync_r, sync_w, start_r, start_w):
                os.close(fd)
            raise Internal(f"conmon could not be started: {exc}") from None
        os.close(sync_w)
        os.close(start_r)
        return process, sync_r, start_w

    def create(self, request: MonitoredCreate, timeout: float) -> Created:
        persist = self._persist(request.container_id)
        persist.mkdir(parents=True, exist_ok=True)
        self.exits_dir.mkdir(parents=True, exist_ok=True)
        self.sockets_dir.mkdir(parents=True, exist_ok=True)
        (persist / "bundle").write_text(str(request.bundle))
        (persist / "log_path").write_text(request.log_path)
        log_file: tuple[int, int] | None = None
        if request.log_path_from_request:
            # conmon opens the path as it is, following symlinks: give it a regular file that was reached
            # without any (a 0.log planted as a link to /etc/shadow is refused, not appended to), and check
            # below that conmon opened that very file (see log_check).
            try:
                log_file = no_symlinks.create_log_file(request.log_path)
            except InvalidArgument as err:
                raise InvalidArgument(f"log_path: {err}") from None
            (persist / _LOG_PATH_CHECKED).write_text("")
        else:
            Path(request.log_path).parent.mkdir(parents=True, exist_ok=True)
        args = [
            *self._base_args(request),
            "-u", request.container_id,
            "-b", str(request.bundle),
            "-p", str(request.bundle / "pidfile"),
            "-P", str(persist / "conmon.pid"),
            "--persist-dir", str(persist),
            "--exit-dir", str(self.exits_dir),
            "-l", f"k8s-file:{request.log_path}",
        ]  # fmt: skip
        if request.log_size_max >= 0:
            args += ["--log-size-max", str(request.log_size_max)]
        if request.restore_from:
            args += ["--restore", request.restore_from]
        if request.tty:
            args.append("-t")
        elif request.stdin:
            args.append("-i")
            if not request.stdin_once:
                args.append("--leave-stdin-open")
        process, sync_r, start_w = self._launch(args, request.bundle, timeout)
        # conmon's first process exits once it has forked
        message = _start_and_sync(
            process,
            sync_r,
            start_w,
            wait_for=timeout,
            read_timeout=timeout,
            what=f"conmon for {request.container_id}",
            stuck=f"conmon for {request.container_id} did not detach within {timeout:g}s",
        )
        pid = int(message.get("pid", -1))
        if pid <= 0:
            detail = message.get("message") or "failed"
            if request.restore_from:  # runc names CRIU's log; its last lines say what went wrong
                detail = f"{detail}; CRIU's restore.log ends: {_tail(request.bundle / 'restore.log')}"
            raise Internal(f"creating container {request.container_id}: {detail}")
        monitor_pid = _read_int(persist / "conmon.pid")
        self._watch(request.container_id, monitor_pid)
        if log_file is not None:
            # conmon opened the log before it ran the runtime, and the container has not started: nothing
            # has been written through that descriptor yet.
            log_check.require_log_held(monitor_pid, log_file, request.log_path, "at create")
        return Created(pid=pid, monitor_pid=monitor_pid or 0)

    def exit_status(self, container_id: str) -> ExitStatus | None:
        # Asked for every container on every ListContainers: the usual answer (no exit file) is found with
        # one open(2) on a plain string, without building a Path.
        try:
            text, finished = _read_exit_file(f"{self.exits_dir}/{container_id}")
        except FileNotFoundError:
            # conmon writes the code into its persist dir too: what is left when someone removed the exit
            # dir (a /run cleaner), where an exit read as "conmon died" (255) instead of its real code.
            try:
                text, finished = _read_exit_file(f"{self.persist_root}/{container_id}/exit")
            except (FileNotFoundError, NotADirectoryError):
                return None
        if not text:
            return None  # conmon is still writing it
        oom = (self._persist(container_id) / "oom").exists()
        return ExitStatus(exit_code=int(text), finished_at=finished, oom_killed=oom)

    def exited(self) -> set[str]:
        try:
            names = os.listdir(self.exits_dir)
        except FileNotFoundError:
            return set()
        return {name for name in names if not name.startswith(".")}

    def monitor_alive(self, container_id: str) -> bool:
        pid = _read_int(self._persist(container_id) / "conmon.pid")
        if not pid:
            return False
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            return False
        name = stat[stat.find(b"(") + 1 : stat.rfind(b")")]
        state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
        return name == b"conmon" and state != b"Z"

    def exited_monitors(self, container_ids: Collection[str]) -> set[str]:
        keys: dict[str, tuple[int, int]] = {}
        gone = set()
        for container_id in container_ids:
            with self._watched_lock:
                key = self._watched.get(container_id)
            if key is None and self.monitor_alive(container_id):  # not watched yet: a restart
                key = self._watch(container_id, _read_int(self._persist(container_id) / "conmon.pid"))
            if key is None:
                gone.add(container_id)
            else:
                keys[container_id] = key
        exited = self.liveness.exited(keys.values())
        return gone | {container_id for container_id, key in keys.items() if key in exited}

    def watch_process(self, container_id: str, pid: int) -> None:
        self._watch(container_id, pid)

    def _watch(self, container_id: str, pid: int) -> tuple[int, int] | None:
        """Watch `pid` for the container from now on, in place of what was watched; None when it is gone."""
        start = process_start_time(pid) if pid > 0 else None
        if start is None:
            return None
        key = (pid, start)
        with self._watched_lock:
            old = self._watched.get(container_id)
            self._watched[container_id] = key
        if old is not None and old != key:
            self.liveness.forget(*old)
        self.liveness.alive(*key)  # opens its pidfd
        return key

    def _bundle(self, container_id: str) -> Path:
        try:
            return Path((self._persist(container_id) / "bundle").read_text())
        except FileNotFoundError:
            raise NotFound(f"container {container_id} has no monitor") from None

    def reopen_log(self, container_id: str) -> None:
        bundle = self._bundle(container_id)
        if not self.monitor_alive(container_id):
            raise FailedPrecondition(f"container {container_id} is not running; its log cannot be reopened")
        checked = self._check_reopened_log(container_id)
        try:
            ctl.send(bundle, ctl.REOPEN_LOG)
        except OSError as exc:
            raise FailedPrecondition(f"container {container_id}: conmon's control fifo: {exc}") from None
        self._wait_for_log(container_id)
        if checked is not None:
            self._require_reopened_log_held(container_id, checked)

    def _check_reopened_log(self, container_id: str) -> str | None:
        """conmon reopens by writing `<log>.tmp` (O_TRUNC, following symlinks) and renaming it over the log:
        that file must be a regular one reached without symlinks, or the reopen is refused. Returns the log
        path when it came with the request (and so must be checked again once conmon reopened it)."""
        persist = self._persist(container_id)
        if not (persist / _LOG_PATH_CHECKED).exists():
            return None
        try:
            log = (persist / "log_path").read_text()
        except FileNotFoundError:
            return None
        try:
            no_symlinks.create_log_file(log + ".tmp")
        except InvalidArgument as err:
            raise InvalidArgument(f"log_path: reopening {log!r}: {err}") from None
        return log

    def _require_reopened_log_held(self, container_id: str, log: str) -> None:
        """After the reopen, the file at the log path (reached without symlinks) must be the one conmon
        writes to; a `.tmp` swapped for a symlink in between leaves a link there and conmon on its target,
        so conmon is stopped before the container's output goes on landing there."""
        try:
            identity = no_symlinks.file_identity(log)
        except (InvalidArgument, OSError):
            identity = (-1, -1)
        pid = _read_int(self._persist(container_id) / "conmon.pid")
        log_check.require_log_held(pid, identity, log, "at reopen")

    def _wait_for_log(self, container_id: str) -> None:
        """conmon reopens the log asynchronously, but the kubelet (and critest) expect the new file once the
        RPC returns: wait for it as cri-o does. A monitor from before the log path was persisted is not waited
        for."""
        try:
            log = Path((self._persist(container_id) / "log_path").read_text())
        except FileNotFoundError:
            return
        deadline = time.monotonic() + _REOPEN_LOG_TIMEOUT
        while not log.exists():
            if not self.monitor_alive(container_id):
                raise FailedPrecondition(f"container {container_id} stopped before its log was reopened")
            if time.monotonic() > deadline:
                raise DeadlineExceeded(f"container {container_id}: conmon did not reopen {log} in time")
            time.sleep(0.01)

    def attach(
        self, container_id: str, streams: ProcessStreams, stdin: bool, stdin_once: bool, tty: bool
    ) -> None:
        bundle = self._bundle(container_id)
        attach(self.sockets_dir / container_id / "attach", bundle, streams, stdin, stdin_once, tty)

    def cleanup(self, container_id: str) -> None:
        # A create cut short (the runtime hung past the timeout, or the daemon died meanwhile) leaves conmon
        # waiting on its runtime: both go, or they would outlive every later Remove.
        if self.monitor_alive(container_id):
            kill_tree(_read_int(self._persist(container_id) / "conmon.pid"))
        with self._watched_lock:
            key = self._watched.pop(container_id, None)
        if key is not None:
            self.liveness.forget(*key)
        with contextlib.suppress(FileNotFoundError):
            (self.exits_dir / container_id).unlink()
        shutil.rmtree(self._persist(container_id), ignore_errors=True)
        with contextlib.suppress(FileNotFoundError):
            (self.sockets_dir / container_id).unlink()  # a symlink to the bundle


def _read_int(path: Path) -> int:
    try:
        return int(path.read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def _start_and_sync(
    process: subprocess.Popen[bytes],
    sync_r: int,
    start_w: int,
    wait_for: float | None,
    read_timeout: float,
    what: str,
    stuck: str,
) -> dict[str, Any]:
    """Let a launched conmon go (a byte on its start pipe), wait up to `wait_for` for its first process to
    exit (DeadlineExceeded with `stuck` otherwise), and return its sync message; the pipes are closed."""
    try:
        os.write(start_w, b"\0")
        os.close(start_w)
        start_w = -1
        try:
            runner.wait(process, wait_for)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise DeadlineExceeded(stuck) from None
        return _read_json(sync_r, read_timeout, what)
    finally:
        runner.release(process)
        if start_w >= 0:
            os.close(start_w)
        os.close(sync_r)


def _read_json(fd: int, timeout: float, what: str) -> dict[str, Any]:
    """The first JSON message conmon writes to the sync pipe."""
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DeadlineExceeded(f"{what}: no answer within {timeout:g}s")
        if not wait_readable(fd, remaining):
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    if not data.strip():
        raise Internal(f"{what}: exited without an answer")
    try:
        message = json.loads(data.split(b"\n", 1)[0])
    except ValueError:
        raise Internal(f"{what}: unreadable answer {data[:200]!r}") from None
    if not isinstance(message, dict):
        raise Internal(f"{what}: unreadable answer {data[:200]!r}")
    return message


def _tail(path: Path, size: int = 2000) -> str:
    try:
        return path.read_text(errors="replace")[-size:].strip()
    except OSError as err:
        return f"(unreadable: {err.strerror})"


def _read_exit_file(path: str) -> tuple[str, datetime]:
    """An exit file's text and when it was written (its mtime)."""
    with open(path) as handle:
        return handle.read().strip(), datetime.fromtimestamp(os.fstat(handle.fileno()).st_mtime, UTC)

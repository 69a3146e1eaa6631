"""Every host command goes through here: a timeout, stderr in the error, and no stolen exit statuses.

The daemon is a child subreaper (see subreaper.py), so orphans of conmon and runc become its children and
must be reaped. Reaping with waitpid(-1) would also steal the exit status of commands run here, so the
reaper only waits for zombies this module did not start, and takes the same lock that covers spawning.
A process a runtime starts detached (`runc exec --detach`) is claimed through the pid file the runtime
writes before it exits: the reaper leaves it to the caller, who waits for it and gets its exit status.
"""

import contextlib
import errno
import math
import os
import select
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from adapters.host.os_errors import node_error
from adapters.process import output
from adapters.readiness import Wakeup, readable
from adapters.tracing.spans import span
from domain.errors import DeadlineExceeded, Internal, ResourceExhausted

_log = structlog.get_logger("pycrio.process")
_spawn_lock = threading.Lock()
_our_children: set[int] = set()
_claimed_pid_files: set[str] = set()
# What a host command may print on either stream: runc's and the CNI plugins' answers are kilobytes
# (cri-o caps an exec's output at the same 16 MiB).
OUTPUT_LIMIT = 16 << 20


@dataclass(frozen=True)
class CommandResult:
    args: list[str]
    returncode: int
    stdout: bytes
    stderr: bytes


class CommandFailed(Internal):
    def __init__(self, result: CommandResult) -> None:
        self.result = result
        detail = (
            result.stderr.decode(errors="replace").strip() or result.stdout.decode(errors="replace").strip()
        )
        super().__init__(
            f"{Path(result.args[0]).name} {' '.join(result.args[1:3])} exited {result.returncode}: {detail}"
        )


def spawn(args: Sequence[str], **popen_kwargs: object) -> subprocess.Popen[bytes]:
    """Popen whose pid the orphan reaper leaves alone until `release` is called. A node out of file
    descriptors, memory or processes is the domain's error naming the command, so that callers undoing
    their work on a PycrioError undo it then too."""
    with _spawn_lock:
        try:
            process: subprocess.Popen[bytes] = subprocess.Popen(list(args), **popen_kwargs)  # type: ignore[call-overload]
        except OSError as err:
            raise _not_started(args, err) from err
        _our_children.add(process.pid)
    return process


def wait(process: subprocess.Popen[bytes], timeout: float | None) -> int:
    """Popen.wait that wakes the moment the process exits: Popen.wait(timeout) polls in doubling sleeps
    of up to 50 ms, which added about 20 ms to a 45 ms conmon --exec. A pidfd becomes readable at exit;
    without one (old kernels, a process already reaped) this is Popen.wait. Raises TimeoutExpired."""
    if timeout is None or not hasattr(os, "pidfd_open"):
        return process.wait(timeout)
    # Not reaped yet (poll() is None), so the pid cannot have been reused when the pidfd is opened.
    if process.poll() is not None:
        return process.returncode
    try:
        pidfd = os.pidfd_open(process.pid)
    except OSError:
        return process.wait(timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(math.ceil(max(timeout, 0.0) * 1000)):
            raise subprocess.TimeoutExpired(process.args, timeout)
    finally:
        os.close(pidfd)
    return process.wait()


def _not_started(args: Sequence[str], err: OSError) -> Exception:
    name = Path(args[0]).name
    if err.errno == errno.EAGAIN:  # fork(2): the process limit (RLIMIT_NPROC, pids.max)
        return ResourceExhausted(f"cannot start {name}: out of processes: {err.strerror}")
    known = node_error(err)
    return type(known)(f"cannot start {name}: {known}") if known is not None else err


def release(process: subprocess.Popen[bytes]) -> None:
    with _spawn_lock:
        _our_children.discard(process.pid)


@contextlib.contextmanager
def claiming(pid_file: Path) -> Iterator[None]:
    """While inside, the orphan reaper leaves alone the process named in `pid_file`: one a runtime started
    detached and that became this daemon's child when the runtime exited. The caller must wait for it."""
    with _spawn_lock:
        _claimed_pid_files.add(str(pid_file))
    try:
        yield
    finally:
        with _spawn_lock:
            _claimed_pid_files.discard(str(pid_file))


def _claimed_pids() -> set[int]:
    pids = set()
    for path in _claimed_pid_files:
        try:
            with open(path) as handle:
                pids.add(int(handle.read().strip()))
        except (OSError, ValueError):
            continue
    return pids


def run(
    args: Sequence[str],
    timeout: float,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    check: bool = True,
    output_limit: int = OUTPUT_LIMIT,
) -> CommandResult:
    """Run a command to completion; kill its whole process group when it passes `timeout` seconds or
    prints more than `output_limit` bytes on stdout or stderr (Internal naming the stream)."""
    with span(f"exec {Path(args[0]).name}", **{"process.command": Path(args[0]).name}):
        return _run(args, timeout, input, env, cwd, check, output_limit)


def _run(
    args: Sequence[str],
    timeout: float,
    input: bytes | None,
    env: Mapping[str, str] | None,
    cwd: str | None,
    check: bool,
    output_limit: int,
) -> CommandResult:
    process = spawn(
        args,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
    )
    name = Path(args[0]).name
    exited = False
    try:
        collected = output.collect(process, input, timeout, output_limit)
        exited = collected.exited
    finally:
        if not exited:  # past the deadline or the limit, or collecting failed: the whole group goes
            _kill_group(process.pid)
            process.wait()
        release(process)
    stdout, stderr = collected.stdout, collected.stderr
    if collected.overflow:
        raise Internal(f"{name} printed more than {output_limit} bytes on {collected.overflow}: killed")
    if not collected.exited:
        detail = stderr.decode(errors="replace").strip()
        raise DeadlineExceeded(f"{name} did not finish within {timeout:g}s: {detail}")
    if collected.held_open:
        _log.warning("a command left a process holding its output open", command=name, pid=process.pid)
    result = CommandResult(list(args), process.returncode, stdout, stderr)
    if check and result.returncode != 0:
        raise CommandFailed(result)
    return result


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def reap_orphans() -> list[int]:
    """Wait for every zombie child that was not started through this module; returns their pids."""
    if not _a_child_is_waitable():
        return []  # the usual case: no scan of every process on the host
    reaped = []
    me = os.getpid()
    with _spawn_lock:
        zombies = _zombie_children(me)
        claimed = _claimed_pids() if zombies and _claimed_pid_files else set()
        for pid in zombies:
            if pid in _our_children or pid in claimed:
                continue
            try:
                os.waitpid(pid, os.WNOHANG)
                reaped.append(pid)
            except ChildProcessError:
                pass
    return reaped


def _a_child_is_waitable() -> bool:
    """Whether any child of this process has exited and is not yet waited for (WNOWAIT: none is reaped)."""
    try:
        return os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until a process we killed is gone, reaping it when it has become our zombie (an orphan the
    daemon adopted as subreaper); False if it is still there after `timeout` seconds.

    A command killed inside a container otherwise lingers as a zombie in the container's pid namespace
    until the periodic reaper runs, and a client looking right after (critest, with pgrep) still sees it.
    """
    me = os.getpid()
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            return True
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] == b"Z" and int(fields[1]) == me:
            with _spawn_lock, contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            continue
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def _zombie_children(parent: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces or parentheses: fields resume after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1 and fields[0] == b"Z" and int(fields[1]) == parent:
            found.append(int(entry.name))
    return found


def _ignore_signal(signum: int, frame: object) -> None:
    """A Python-level handler, so that the interpreter writes the signal to the wakeup fd."""


class OrphanReaper:
    """A daemon thread that reaps orphaned zombies when a child exits, not on a timer.

    SIGCHLD reaches the thread through the interpreter's signal wakeup fd (`signal.set_wakeup_fd`): the
    interpreter's C-level handler writes the signal's number there the moment it arrives, whichever thread
    it lands on. The reaper then lets `gap` seconds pass (the exits of a burst, and the waits of the
    threads that started those commands) and looks once: a pod start's dozen commands cost a look or
    two, an idle daemon none, and a look finds no waitable child (waitid WNOWAIT) unless an orphan is
    left, so /proc is scanned only then. `start()` and `stop()` must be called from the main thread (they
    install and restore the handler and the wakeup fd).
    """

    def __init__(self, gap: float = 1.0) -> None:
        self._gap = gap
        self._signals = -1
        self._previous_fd = -1
        self._previous_handler: object = signal.SIG_DFL
        self._stop = Wakeup()
        self._thread = threading.Thread(target=self._loop, name="orphan-reaper", daemon=True)

    def start(self) -> None:
        read_end, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._signals = read_end
        self._write_end = write_end
        self._previous_handler = signal.signal(signal.SIGCHLD, _ignore_signal)
        self._previous_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
        self._thread.start()

    def stop(self) -> None:
        if self._signals < 0:
            return
        signal.set_wakeup_fd(self._previous_fd)
        signal.signal(signal.SIGCHLD, self._previous_handler)  # type: ignore[arg-type]
        self._stop.set()
        self._thread.join(timeout=10)
        for fd in (self._signals, self._write_end):
            os.close(fd)
        self._signals = -1
        self._stop.close()

    def _loop(self) -> None:
        pending = True  # orphans may have exited before the handler was in place
        while True:
            if pending:
                self._reap()
            if self._stop.fileno() in readable([self._signals, self._stop]):
                return
            if readable([self._stop], self._gap):
                return
            pending = signal.SIGCHLD in _drain(self._signals)

    def _reap(self) -> None:
        try:
            pids = reap_orphans()
        except Exception:  # keep reaping whatever one scan hit
            _log.exception("reaping orphans failed")
            return
        if pids:
            _log.debug("reaped orphans", pids=pids)


def _drain(fd: int) -> bytes:
    """Every signal number written to the wakeup pipe so far."""
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)

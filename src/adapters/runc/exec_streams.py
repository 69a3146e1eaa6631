"""An exec wired to a client's streams: `<runtime> exec --process`, as cri-o does it.

The container's own OCI process with the command swapped in is run on pipes, or for a tty on a
pseudo-terminal whose resizes runc passes on to the process's terminal. `--pid-file` gives the process's
host pid, so a cancelled exec is killed inside the container (killing runc alone would leave it running).
"""

import contextlib
import fcntl
import json
import os
import signal
import struct
import subprocess
import tempfile
import termios
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adapters.process.runner import release, spawn
from adapters.process.threads import pump_resize, start
from ports.streaming import ByteSink, ByteSource, ProcessStreams, TerminalSize

_TICK = 0.2
# How long a cancelled exec waits for runc to name the process it started.
_PID_FILE_WAIT = 10.0
# How long a tty exec waits for the client's first terminal size before starting the process.
_FIRST_SIZE_WAIT = 2.0
_CHUNK = 32 * 1024
# util-linux's setsid: a new session whose controlling terminal is stdin; --wait keeps the exit code if it
# has to fork (it does when already a process group leader).
_SETSID_CTTY = ("setsid", "--ctty", "--wait")


def exec_with_streams(
    runtime_args: list[str],
    container_id: str,
    process: Mapping[str, Any],
    streams: ProcessStreams,
    scratch_dir: Path,
) -> int:
    """Run `process` in the container through `<runtime_args> exec`; its exit code, -1 when cancelled."""
    scratch_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=scratch_dir, prefix=f"exec-{container_id[:12]}-") as work:
        spec, pid_file = Path(work) / "process.json", Path(work) / "pid"
        spec.write_text(json.dumps(process))
        args = [*runtime_args, "exec", "--process", str(spec), "--pid-file", str(pid_file), container_id]
        runner_io = _TtyExec(args, streams) if streams.tty else _PipeExec(args, streams)
        try:
            return runner_io.run(streams, pid_file)
        finally:
            runner_io.close()


def shell_exit_code(returncode: int) -> int:
    """A runtime killed by signal N reads as -N from Popen; clients expect a shell's 128+N, never below 0."""
    return 128 - returncode if returncode < 0 else returncode


def _pump_output(fd: int, sink: ByteSink | None) -> None:
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except OSError:  # EIO once the terminal's other side is gone
            return
        if not chunk:
            return
        if sink is not None:
            with contextlib.suppress(OSError):
                sink.write(chunk)


def _pump_input(source: ByteSource, write: Callable[[bytes], None], close: Callable[[], None]) -> None:
    try:
        while chunk := source.read(_CHUNK):
            write(chunk)
    except (OSError, ValueError):  # the process's stdin is gone (ValueError: its pipe object is closed)
        pass
    with contextlib.suppress(OSError, ValueError):
        close()


class _Exec:
    proc: subprocess.Popen[bytes]
    outputs: list[threading.Thread]

    def run(self, streams: ProcessStreams, pid_file: Path) -> int:
        while self.proc.poll() is None:
            if streams.cancelled.wait(_TICK):
                self._kill(pid_file)
                break
        self.proc.wait()
        for thread in self.outputs:
            thread.join()
        return -1 if streams.cancelled.is_set() else shell_exit_code(self.proc.returncode)

    def _kill(self, pid_file: Path) -> None:
        # The exec'd process lives in the container and runc only waits for it; its children would be
        # adopted by the container's init, so the whole tree goes. runc writes the pid file only after the
        # process started (which may already have printed): wait for it while runc is still there.
        for _ in range(int(_PID_FILE_WAIT / _TICK * 4)):
            try:
                kill_tree(int(pid_file.read_text().strip()))
                break
            except (OSError, ValueError):
                if self.proc.poll() is not None:
                    break
                threading.Event().wait(_TICK / 4)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def close(self) -> None:
        release(self.proc)


def kill_tree(root: int) -> None:
    """SIGKILL a process and all its descendants: stop them first, so none can fork past the snapshot."""
    stopped: set[int] = set()
    while True:
        tree = {root, *_descendants(root)} - stopped
        if not tree:
            break
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= tree
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as children:
                    kids = [int(c) for c in children.read().split()]
            except OSError:
                continue
            found += kids
            pending += kids
    return found


class _PipeExec(_Exec):
    def __init__(self, args: list[str], streams: ProcessStreams) -> None:
        pipe, null = subprocess.PIPE, subprocess.DEVNULL
        self.proc = spawn(
            args,
            stdin=pipe if streams.stdin is not None else null,
            stdout=pipe if streams.stdout is not None else null,
            stderr=pipe,  # runc's own errors land here too when the client asked for no stderr
            start_new_session=True,
        )
        self.outputs = []
        if self.proc.stdout is not None:
            self.outputs.append(start(_pump_output, self.proc.stdout.fileno(), streams.stdout))
        if self.proc.stderr is not None:
            self.outputs.append(start(_pump_output, self.proc.stderr.fileno(), streams.stderr))
        if streams.stdin is not None and self.proc.stdin is not None:
            stdin = self.proc.stdin
            start(_pump_input, streams.stdin, lambda b: (stdin.write(b), stdin.flush()), stdin.close)

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        super().close()


class _TtyExec(_Exec):
    def __init__(self, args: list[str], streams: ProcessStreams) -> None:
        import pty  # with tty, at the first exec with a terminal, not at start-up (docs/bench.md)
        import tty

        master, slave = pty.openpty()
        # Raw from the start: runc makes its side raw too, but only after it started the process, whose
        # first output could then pass the line discipline twice ("\r\r\n").
        tty.setraw(slave, termios.TCSANOW)
        self.terminal = _Terminal(master)
        self.outputs = []
        try:
            if streams.resize is not None:
                # kubectl sends the terminal's size first thing. runc gives the process a terminal of its
                # own and copies our terminal's size to it just after starting the process (so a command
                # that asks at once may still see 0x0: the same race as in cri-o); having the right size
                # here before runc starts makes that first copy the right one.
                sized = threading.Event()
                start(pump_resize, streams.resize, self.terminal.resize, sized)
                sized.wait(_FIRST_SIZE_WAIT)
            # runc becomes the session leader with the terminal as its controlling tty, so a later resize
            # reaches it as SIGWINCH and it resizes the container process's terminal. setsid(1) does that
            # before it execs runc: a Popen preexec_fn would run the interpreter's at-fork handlers (gRPC's
            # among them) in the forked child of this threaded daemon, which could die there of SIGABRT.
            self.proc = spawn([*_SETSID_CTTY, *args], stdin=slave, stdout=slave, stderr=slave)
        except BaseException:
            self.terminal.close()
            raise
        finally:
            os.close(slave)

    def run(self, streams: ProcessStreams, pid_file: Path) -> int:
        self.outputs.append(start(_pump_output, self.terminal.fd, streams.stdout))
        if streams.stdin is not None:
            start(_pump_input, streams.stdin, self.terminal.write, lambda: None)
        return super().run(streams, pid_file)

    def close(self) -> None:
        self.terminal.close()
        super().close()


class _Terminal:
    """The pty master, shared by the output, input and resize threads; closed once, under a lock, so a late
    writer gets an error instead of writing to whatever reuses the descriptor number."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()
        self._closed = False

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._lock:
                if self._closed:
                    raise OSError("terminal closed")
                try:
                    written = os.write(self.fd, view)
                except BlockingIOError:
                    written = 0
            view = view[written:]

    def resize(self, size: TerminalSize) -> None:
        with self._lock:
            if self._closed:
                raise OSError("terminal closed")
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self.fd)

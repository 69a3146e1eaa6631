"""An exec wired to a client's streams: `<runtime> exec --process`, as cri-o and containerd do it.

The container's own OCI process with the command swapped in is run on pipes, or for a tty on the
pseudo-terminal the runtime makes in the container and hands over through a console socket, as containerd's
shim takes it. `--pid-file` gives the process's host pid, so a cancelled exec is killed inside the container
(killing the runtime alone would leave it running).
"""

import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from adapters.process import runner
from adapters.process.runner import release, spawn
from adapters.process.threads import pump_resize, start
from adapters.process.tree import kill_tree
from domain.errors import Internal
from ports.streaming import ByteSink, ByteSource, ProcessStreams, TerminalSize

_TICK = 0.2
# How long a cancelled exec waits for runc to name the process it started.
_PID_FILE_WAIT = 10.0
# How long a tty exec waits for the client's first terminal size before starting the process.
_FIRST_SIZE_WAIT = 2.0
_CHUNK = 32 * 1024
# What a tty exec still copies once its process exited and a background child keeps the terminal open.
_AFTER_EXIT_CHUNKS = 64


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
        if streams.tty:
            return _exec_on_terminal(runtime_args, container_id, process, streams, Path(work))
        spec, pid_file = Path(work) / "process.json", Path(work) / "pid"
        spec.write_text(json.dumps(process))
        args = [*runtime_args, "exec", "--process", str(spec), "--pid-file", str(pid_file), container_id]
        runner_io = _PipeExec(args, streams)
        try:
            return runner_io.run(streams, pid_file)
        finally:
            runner_io.close()


def spawn_detached(args: list[str], container_id: str, stderr: int) -> subprocess.Popen[bytes]:
    """Start `<runtime> exec --detach ...` with its output on a pipe, in a session of its own (so a cancel
    kills whatever it started so far); a runtime that cannot be run is an Internal error."""
    try:
        return spawn(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, start_new_session=True
        )
    except OSError as err:
        raise Internal(f"exec in {container_id}: {args[0]} cannot be run: {err.strerror}") from None


def shell_exit_code(returncode: int) -> int:
    """A runtime killed by signal N reads as -N from Popen; clients expect a shell's 128+N, never below 0."""
    return 128 - returncode if returncode < 0 else returncode


def _pump_output(fd: int, sink: ByteSink | None) -> None:
    while _copy_chunk(fd, sink):
        pass


def _copy_chunk(fd: int, sink: ByteSink | None) -> bool:
    """Copy one read's worth to `sink` (a client gone meanwhile is no error here); False at the end."""
    try:
        chunk = os.read(fd, _CHUNK)
    except OSError:  # EIO once the terminal's other side is gone and all it wrote has been read
        return False
    if not chunk:
        return False
    if sink is not None:
        with contextlib.suppress(OSError):
            sink.write(chunk)
    return True


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


def _exec_on_terminal(
    runtime_args: list[str],
    container_id: str,
    process: Mapping[str, Any],
    streams: ProcessStreams,
    work: Path,
) -> int:
    """A tty exec: the runtime starts the process detached on a terminal it makes in the container and
    sends us that terminal's master; the process is then our child (we are a subreaper) and its exit is ours
    to wait for.

    The runtime's foreground mode (its own stdio on a terminal of ours) is not used: runc then clears the
    container terminal's ONLCR and turns output processing on in ours, both racing the process's first
    writes, so an early "\\n" came out as "\\r\\r\\n" or "\\n". Here only the container's terminal
    translates, from the first byte on, as with containerd and cri-o's conmon.
    """
    terminal = _Terminal()
    try:
        if streams.resize is not None:
            # kubectl sends the terminal's size first thing: given as the process's consoleSize, the
            # runtime sets it before the process starts, so even a command that asks at once sees it.
            sized = threading.Event()
            start(pump_resize, streams.resize, terminal.resize, sized)
            sized.wait(_FIRST_SIZE_WAIT)
        return _TerminalExec(runtime_args, container_id, process, streams, work, terminal).run()
    finally:
        terminal.close()


class _TerminalExec:
    def __init__(
        self,
        runtime_args: list[str],
        container_id: str,
        process: Mapping[str, Any],
        streams: ProcessStreams,
        work: Path,
        terminal: "_Terminal",
    ) -> None:
        self.container_id = container_id
        self.streams = streams
        self.terminal = terminal
        self.pid_file = work / "pid"
        spec = work / "process.json"
        size = terminal.size
        sized = {"consoleSize": {"height": size.height, "width": size.width}} if size is not None else {}
        spec.write_text(json.dumps({**process, **sized}))
        self.args = [
            *runtime_args, "exec", "--detach", "--process", str(spec), "--pid-file", str(self.pid_file),
        ]  # fmt: skip

    def run(self) -> int:
        # A unix socket path has room for 107 bytes: a private directory of its own keeps it short.
        with tempfile.TemporaryDirectory(prefix="pycrio-tty-") as sockets, runner.claiming(self.pid_file):
            path = str(Path(sockets) / "console")
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
                listener.bind(path)
                listener.listen(1)
                code = self._start(path)
                if code is not None:
                    return code
                self.terminal.attach(self._receive_master(listener))
            return self._copy_until_exit(read_pid(self.pid_file))

    def _start(self, console_socket: str) -> int | None:
        """Run the runtime until it has started the process: None, or the runtime's own failure (its
        message written to the client's terminal, as a shell would show it) or -1 when cancelled."""
        args = [*self.args, "--console-socket", console_socket, self.container_id]
        runtime = spawn_detached(args, self.container_id, stderr=subprocess.STDOUT)
        try:
            assert runtime.stdout is not None
            while runtime.poll() is None:
                if self.streams.cancelled.wait(_TICK):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(runtime.pid, signal.SIGKILL)
                    runtime.wait()
                    self._kill_started()
                    return -1
            said = runtime.stdout.read()
            if runtime.returncode == 0 and read_pid(self.pid_file):
                return None
            self._kill_started()
            if self.streams.stdout is not None:
                with contextlib.suppress(OSError):
                    self.streams.stdout.write(said.replace(b"\n", b"\r\n"))
            return shell_exit_code(runtime.returncode) or 1
        finally:
            if runtime.stdout is not None:
                runtime.stdout.close()
            release(runtime)

    def _kill_started(self) -> None:
        pid = read_pid(self.pid_file)
        if pid:
            kill_tree(pid)
            runner.wait_gone(pid, _PID_FILE_WAIT)

    def _receive_master(self, listener: socket.socket) -> int:
        # The runtime connected and sent it before it exited: it waits in the backlog.
        listener.setblocking(False)
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            self._kill_started()
            raise Internal(f"exec in {self.container_id}: the runtime sent no terminal") from None
        with connection:
            connection.settimeout(_PID_FILE_WAIT)
            _, fds, _, _ = socket.recv_fds(connection, 4096, 1)
        if not fds:
            self._kill_started()
            raise Internal(f"exec in {self.container_id}: the runtime sent no terminal")
        return fds[0]

    def _copy_until_exit(self, pid: int) -> int:
        exited = threading.Event()
        output = start(_pump_terminal, self.terminal.fd, self.streams.stdout, exited)
        if self.streams.stdin is not None:
            start(_pump_input, self.streams.stdin, self.terminal.write, lambda: None)
        try:
            cancelled, status = self._wait(pid)
        finally:
            exited.set()
            output.join()
        return -1 if cancelled else shell_exit_code(os.waitstatus_to_exitcode(status))

    def _wait(self, pid: int) -> tuple[bool, int]:
        """Wait for the process (killing its tree if the exec is cancelled): whether it was, its status."""
        cancelled = False
        try:
            pidfd = os.pidfd_open(pid)
            try:
                exit_poller = select.poll()
                exit_poller.register(pidfd, select.POLLIN)
                while not exit_poller.poll(int(_TICK * 1000)):
                    if self.streams.cancelled.is_set():
                        cancelled = True
                        kill_tree(pid)
                        break
            finally:
                os.close(pidfd)
            _, status = os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            raise Internal(
                f"exec in {self.container_id}: process {pid} was reaped elsewhere; its exit is unknown"
            ) from None
        return cancelled, status


def _pump_terminal(fd: int, sink: ByteSink | None, exited: threading.Event) -> None:
    """Copy the terminal's output until it hangs up (every holder of the process's side closed it), or, once
    the process exited, until nothing more is there: a background child may keep it open for ever."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    after_exit = 0
    while after_exit <= _AFTER_EXIT_CHUNKS:
        done = exited.is_set()
        if not poller.poll(0 if done else int(_TICK * 1000)):
            if done:
                return
            continue
        after_exit += done
        if not _copy_chunk(fd, sink):
            return


def read_pid(pid_file: Path) -> int:
    """The pid a runtime wrote to `pid_file`; 0 while it has not (or wrote nothing readable)."""
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return 0


class _Terminal:
    """The container's pty master, shared by the output, input and resize threads. Sizes that come before
    the runtime hands the master over are kept for it; it is closed once, under a lock, so a late writer
    gets an error instead of writing to whatever reuses the descriptor number."""

    def __init__(self) -> None:
        self.fd = -1
        self.size: TerminalSize | None = None
        self._lock = threading.Lock()
        self._closed = False

    def attach(self, fd: int) -> None:
        with self._lock:
            self.fd = fd
            if self.size is not None:
                _set_size(fd, self.size)

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            with self._lock:
                if self._closed or self.fd < 0:
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
            self.size = size
            if self.fd >= 0:
                _set_size(self.fd, size)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                if self.fd >= 0:
                    os.close(self.fd)


def _set_size(fd: int, size: TerminalSize) -> None:
    # On the master, the kernel also sends the process's foreground group SIGWINCH.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", size.height, size.width, 0, 0))

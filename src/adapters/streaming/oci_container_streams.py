"""Exec and attach into real containers: `runc exec` wired to the client's streams, conmon's attach socket.

Exec, as cri-o does it: the container's own OCI process (config.json) with the command swapped in is run by
`<runtime> exec --process`, on pipes, or for a tty on a pseudo-terminal whose resizes runc passes on to
the process's terminal. `--pid-file` gives the process's host pid, so a cancelled exec is killed inside the
container (killing runc alone would leave it running).

Attach goes through conmon: its attach socket (SOCK_SEQPACKET) carries the container's output as messages
whose first byte names the pipe (2 stdout, 3 stderr; 1 is stdin) and takes stdin as plain messages;
half-closing the socket ends stdin (conmon then closes the container's stdin unless it was told to leave
it open). Terminal resizes are written to conmon's ctl fifo in the bundle as "1 <height> <width>\\n".
"""

import contextlib
import fcntl
import json
import os
import pty
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import structlog

from adapters.process.runner import release, spawn
from ports.streaming import ByteSink, ByteSource, ProcessStreams, TerminalSize
from ports.streaming_targets import ContainerIo, ContainerIoLookup

_log = structlog.get_logger("pycrio.streaming.oci")
_TICK = 0.2
# How long a cancelled exec waits for runc to name the process it started.
_PID_FILE_WAIT = 10.0
# How long a tty exec waits for the client's first terminal size before starting the process.
_FIRST_SIZE_WAIT = 2.0
_CHUNK = 32 * 1024
_ATTACH_STDOUT, _ATTACH_STDERR = 2, 3  # conmon's pipe numbers
_CTL_RESIZE = 1


class OciContainerStreams:
    def __init__(self, lookup: ContainerIoLookup, scratch_dir: Path) -> None:
        self._lookup = lookup
        self._scratch = scratch_dir

    # ------------------------------------------------------------------------------------------- exec
    def exec(self, container_id: str, cmd: list[str], streams: ProcessStreams) -> int:
        io = self._lookup.container_io(container_id)
        process = json.loads((Path(io.bundle) / "config.json").read_text())["process"]
        process["args"] = list(cmd)
        process["terminal"] = streams.tty
        self._scratch.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch, prefix=f"exec-{io.container_id[:12]}-") as work:
            spec, pid_file = Path(work) / "process.json", Path(work) / "pid"
            spec.write_text(json.dumps(process))
            args = [io.runtime_path, "--root", io.runtime_root, "exec", "--process", str(spec)]
            args += ["--pid-file", str(pid_file), io.container_id]  # the full id, if a prefix was asked
            runner_io = _TtyExec(args, streams) if streams.tty else _PipeExec(args, streams)
            try:
                return runner_io.run(streams, pid_file)
            finally:
                runner_io.close()

    # ----------------------------------------------------------------------------------------- attach
    def attach(self, container_id: str, streams: ProcessStreams) -> None:
        io = self._lookup.container_io(container_id)
        sock = _connect_attach_socket(Path(io.attach_socket))
        output_done = threading.Event()
        stdin_done = threading.Event()
        threads = [_start(_attach_output, sock, streams.stdout, streams.stderr, output_done)]
        if streams.stdin is not None and io.stdin:
            threads.append(_start(_attach_input, streams.stdin, sock, stdin_done))
        if streams.resize is not None and io.tty:
            threads.append(_start(_pump_resize, streams.resize, lambda s: _resize_via_ctl(io, s)))
        try:
            while not streams.cancelled.wait(_TICK):
                if output_done.is_set():
                    return  # the container exited (conmon closed the socket)
                if stdin_done.is_set() and not io.stdin_once and not io.tty:
                    return  # as cri-o: the client ended its input and the container keeps its stdin
        finally:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def _connect_attach_socket(path: Path) -> socket.socket:
    """Connect through /proc/self/fd/<dir>/<name>: a unix socket path may not exceed 107 bytes, which a
    deep run directory plus a 64-character container id easily does (podman does the same)."""
    directory = os.open(path.parent, os.O_PATH | os.O_CLOEXEC)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        sock.connect(f"/proc/self/fd/{directory}/{path.name}")
    except OSError:
        sock.close()
        raise
    finally:
        os.close(directory)
    return sock


def _start(target: Callable[..., None], *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)
    thread.start()
    return thread


def _attach_output(
    sock: socket.socket, stdout: ByteSink | None, stderr: ByteSink | None, done: threading.Event
) -> None:
    try:
        while message := sock.recv(8192 + 1):
            sink = {_ATTACH_STDOUT: stdout, _ATTACH_STDERR: stderr}.get(message[0])
            if sink is not None:
                with contextlib.suppress(OSError):
                    sink.write(message[1:])
    except OSError:
        pass
    finally:
        done.set()


def _attach_input(source: ByteSource, sock: socket.socket, done: threading.Event) -> None:
    try:
        while chunk := source.read(8192):
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        done.set()


def _resize_via_ctl(io: ContainerIo, size: TerminalSize) -> None:
    fd = os.open(Path(io.bundle) / "ctl", os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, f"{_CTL_RESIZE} {size.height} {size.width}\n".encode())
    finally:
        os.close(fd)


def _pump_resize(
    events: Iterator[TerminalSize],
    apply: Callable[[TerminalSize], None],
    applied: threading.Event | None = None,
) -> None:
    try:
        for size in events:
            try:
                apply(size)
            except OSError as err:
                _log.debug("terminal resize failed", error=str(err))
            if applied is not None:
                applied.set()
    finally:
        if applied is not None:
            applied.set()  # no size is coming: nobody should wait for one


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
        return -1 if streams.cancelled.is_set() else self.proc.returncode

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
            self.outputs.append(_start(_pump_output, self.proc.stdout.fileno(), streams.stdout))
        if self.proc.stderr is not None:
            self.outputs.append(_start(_pump_output, self.proc.stderr.fileno(), streams.stderr))
        if streams.stdin is not None and self.proc.stdin is not None:
            stdin = self.proc.stdin
            _start(_pump_input, streams.stdin, lambda b: (stdin.write(b), stdin.flush()), stdin.close)

    def close(self) -> None:
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        super().close()


class _TtyExec(_Exec):
    def __init__(self, args: list[str], streams: ProcessStreams) -> None:
        master, slave = pty.openpty()
        self.terminal = _Terminal(master)
        self.outputs = []
        try:
            if streams.resize is not None:
                # kubectl sends the terminal's size first thing. runc gives the process a terminal of its
                # own and copies our terminal's size to it just after starting the process (so a command
                # that asks at once may still see 0x0: the same race as in cri-o); having the right size
                # here before runc starts makes that first copy the right one.
                sized = threading.Event()
                _start(_pump_resize, streams.resize, self.terminal.resize, sized)
                sized.wait(_FIRST_SIZE_WAIT)
            # runc becomes the session leader with the terminal as its controlling tty, so a later resize
            # reaches it as SIGWINCH and it resizes the container process's terminal.
            self.proc = spawn(
                args,
                stdin=slave,
                stdout=slave,
                stderr=slave,
                start_new_session=True,
                preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
            )
        except BaseException:
            self.terminal.close()
            raise
        finally:
            os.close(slave)

    def run(self, streams: ProcessStreams, pid_file: Path) -> int:
        self.outputs.append(_start(_pump_output, self.terminal.fd, streams.stdout))
        if streams.stdin is not None:
            _start(_pump_input, streams.stdin, self.terminal.write, lambda: None)
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

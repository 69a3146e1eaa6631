"""Fakes for streaming: containers that are local processes, and a dict of streaming targets.

`LocalProcessStreams` runs real local processes (pipes, or a pseudo-terminal for tty), so the streaming
protocols are tested end to end against real processes: exit codes, stdin EOF, terminal resizes and
killing on cancel are real. A "container" is a long-running local process started by `start_container`;
attach joins its output fan-out and its stdin, as conmon's attach socket does.
"""

import contextlib
import fcntl
import os
import pty
import signal
import struct
import subprocess
import termios
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from adapters.process.runner import release, spawn
from domain.errors import FailedPrecondition, NotFound, Unavailable
from ports.streaming import ByteSink, ByteSource, Cancellation, DuplexStream, ProcessStreams, TerminalSize
from ports.streaming_targets import StreamContainer

_TICK = 0.05
# Which sinks a named output ("stdout", "stderr") goes to right now.
SinkChooser = Callable[[str], list[ByteSink]]


class CollectedOutput:
    """A ByteSink that keeps what it is given."""

    def __init__(self) -> None:
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def close(self) -> None:
        pass


class FakeStreamTargets:
    def __init__(self) -> None:
        self.containers: dict[str, StreamContainer] = {}
        self.sandboxes: dict[str, str] = {}
        self.stopped: set[str] = set()  # containers that exist but do not run

    def container(self, container_id: str) -> StreamContainer:
        try:
            found = self.containers[container_id]
        except KeyError:
            raise NotFound(f"container {container_id!r} not found") from None
        if container_id in self.stopped:
            raise FailedPrecondition(f"container {container_id} is not running")
        return found

    def sandbox_netns(self, sandbox_id: str) -> str:
        try:
            return self.sandboxes[sandbox_id]
        except KeyError:
            raise NotFound(f"pod sandbox {sandbox_id!r} not found") from None


class _Process:
    """A local process on pipes or a pty, with output pumped to whatever sinks `targets` returns."""

    def __init__(self, cmd: list[str], tty: bool, stdin: bool, stdout: bool, stderr: bool) -> None:
        self.tty = tty
        self.master: int | None = None
        if tty:
            self.master, slave = pty.openpty()
            self.proc = spawn(cmd, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
            os.close(slave)
            self._outputs = {"stdout": self.master}
        else:
            pipe, null = subprocess.PIPE, subprocess.DEVNULL
            self.proc = spawn(
                cmd,
                stdin=pipe if stdin else null,
                stdout=pipe if stdout else null,
                stderr=pipe if stderr else null,
                start_new_session=True,
            )
            self._outputs = {}
            if self.proc.stdout is not None:
                self._outputs["stdout"] = self.proc.stdout.fileno()
            if self.proc.stderr is not None:
                self._outputs["stderr"] = self.proc.stderr.fileno()
        self._stdin_lock = threading.Lock()
        self._stdin_closed = False
        self.pumps: list[threading.Thread] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def start_output(self, sinks_for: SinkChooser) -> None:
        for name, fd in self._outputs.items():
            pump = threading.Thread(target=self._pump_output, args=(fd, name, sinks_for), daemon=True)
            pump.start()
            self.pumps.append(pump)

    def _pump_output(self, fd: int, name: str, sinks_for: SinkChooser) -> None:
        while True:
            try:
                chunk = os.read(fd, 32768)
            except OSError:  # EIO: the pty's other side is closed
                chunk = b""
            if not chunk:
                return
            for sink in sinks_for(name):
                with contextlib.suppress(OSError):  # that client is gone; keep draining for the others
                    sink.write(chunk)

    def write_stdin(self, data: bytes) -> None:
        with self._stdin_lock:
            if self._stdin_closed:
                return
            if self.master is not None:
                os.write(self.master, data)
            elif self.proc.stdin is not None:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()

    def close_stdin(self) -> None:
        with self._stdin_lock:
            if self._stdin_closed:
                return
            self._stdin_closed = True
            if self.master is not None:
                with contextlib.suppress(OSError):
                    os.write(self.master, b"\x04")  # end of file on a terminal is ^D
            elif self.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    self.proc.stdin.close()

    def resize(self, size: TerminalSize) -> None:
        with self._stdin_lock:
            if self.master is not None:
                winsize = struct.pack("HHHH", size.height, size.width, 0, 0)
                fcntl.ioctl(self.master, termios.TIOCSWINSZ, winsize)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def wait(self, cancelled: Cancellation | None) -> int | None:
        """The exit code, or None after killing the process because `cancelled` was set."""
        while self.proc.poll() is None:
            if cancelled is not None and cancelled.wait(_TICK):
                self.kill()
                self.proc.wait()
                return None
            if cancelled is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(_TICK)
        return self.proc.returncode

    def finish(self) -> None:
        for pump in self.pumps:
            pump.join()
        with self._stdin_lock:  # no late stdin or resize may touch a reused descriptor number
            self._stdin_closed = True
            if self.master is not None:
                os.close(self.master)
                self.master = None
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        release(self.proc)


def _pump_stdin(source: ByteSource, process: _Process, close_at_end: bool) -> None:
    try:
        while chunk := source.read(32768):
            process.write_stdin(chunk)
    except OSError:
        pass
    if close_at_end:
        process.close_stdin()


def _pump_resize(events: Iterator[TerminalSize], process: _Process) -> None:
    with contextlib.suppress(OSError):
        for size in events:
            process.resize(size)


def _start(target: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


@dataclass
class _Container:
    spec: StreamContainer
    process: _Process
    attached: list[ProcessStreams] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    detached_once: bool = False


class LocalProcessStreams:
    def __init__(self) -> None:
        self._containers: dict[str, _Container] = {}
        self.exec_pids: list[int] = []

    # --- containers (attach targets) ---
    def start_container(
        self,
        container_id: str,
        cmd: list[str],
        tty: bool = False,
        stdin: bool = False,
        stdin_once: bool = False,
    ) -> StreamContainer:
        spec = StreamContainer(container_id, stdin=stdin, stdin_once=stdin_once, tty=tty)
        process = _Process(cmd, tty=tty, stdin=stdin, stdout=True, stderr=True)
        container = _Container(spec, process)

        def sinks_for(name: str) -> list[ByteSink]:
            with container.lock:
                return [s for a in container.attached if (s := getattr(a, name)) is not None]

        process.start_output(sinks_for)
        self._containers[container_id] = container
        return spec

    def container_pid(self, container_id: str) -> int:
        return self._containers[container_id].process.pid

    def stop_all(self) -> None:
        for container in self._containers.values():
            container.process.kill()
            container.process.wait(None)
            container.process.finish()
        self._containers.clear()

    # --- ContainerStreams ---
    def exec(self, container_id: str, cmd: list[str], streams: ProcessStreams) -> int:
        self._lookup(container_id)
        process = _Process(
            cmd,
            tty=streams.tty,
            stdin=streams.stdin is not None,
            stdout=streams.stdout is not None,
            stderr=streams.stderr is not None,
        )
        self.exec_pids.append(process.pid)
        sinks = {"stdout": streams.stdout, "stderr": streams.stderr}
        process.start_output(lambda name: [s] if (s := sinks.get(name)) is not None else [])
        if streams.stdin is not None:
            _start(_pump_stdin, streams.stdin, process, True)
        if streams.resize is not None:
            _start(_pump_resize, streams.resize, process)
        try:
            code = process.wait(streams.cancelled)
        finally:
            process.kill()  # anything the command left running in its session
            process.finish()
        return -1 if code is None else code

    def attach(self, container_id: str, streams: ProcessStreams) -> None:
        container = self._lookup(container_id)
        process = container.process
        with container.lock:
            container.attached.append(streams)
        if streams.stdin is not None and container.spec.stdin:
            _start(_pump_stdin, streams.stdin, process, container.spec.stdin_once)
        if streams.resize is not None:
            _start(_pump_resize, streams.resize, process)
        try:
            while process.proc.poll() is None and not streams.cancelled.wait(_TICK):
                pass
            if not streams.cancelled.is_set():
                for pump in process.pumps:  # the process ended: deliver its last output first
                    pump.join()
        finally:
            with container.lock:
                container.attached.remove(streams)
                if container.spec.stdin_once and not container.detached_once:
                    container.detached_once = True
                    process.close_stdin()

    def _lookup(self, container_id: str) -> _Container:
        try:
            return self._containers[container_id]
        except KeyError:
            raise NotFound(f"container {container_id!r} not found") from None


class InMemoryPortForwarder:
    """Pods whose ports are functions: a forwarded connection sends its bytes until it half-closes, then
    gets `service(bytes)` back and the end of the stream, like a one-request TCP server."""

    def __init__(self) -> None:
        self.services: dict[tuple[str, int], Callable[[bytes], bytes]] = {}

    def port_forward(self, sandbox_id: str, port: int, stream: DuplexStream, cancelled: Cancellation) -> None:
        service = self.services.get((sandbox_id, port))
        if service is None:
            raise Unavailable(f"cannot connect to port {port}: connection refused")
        received = bytearray()
        reader = threading.Thread(target=lambda: _drain(stream, received), daemon=True)
        reader.start()
        while reader.is_alive():
            if cancelled.wait(_TICK):
                return  # the client side is gone; the reader ends with the stream
        stream.write(service(bytes(received)))
        stream.close()


def _drain(stream: DuplexStream, into: bytearray) -> None:
    while chunk := stream.read(32768):
        into += chunk

"""Attach to a container's main process through conmon.

conmon's attach socket (SOCK_SEQPACKET) carries the container's output as messages whose first byte names
the pipe (2 stdout, 3 stderr; 1 is stdin) and takes stdin as plain messages; half-closing the socket ends
stdin (conmon then closes the container's stdin unless it was told to leave it open). Terminal resizes are
written to conmon's ctl fifo in the bundle as "1 <height> <width>\\n".
"""

import contextlib
import os
import socket
import threading
from pathlib import Path

from adapters.conmon import ctl
from adapters.process.threads import pump_resize, start
from ports.streaming import ByteSink, ByteSource, ProcessStreams, TerminalSize

_TICK = 0.2
_ATTACH_STDOUT, _ATTACH_STDERR = 2, 3  # conmon's pipe numbers


def attach(
    attach_socket: Path, bundle: Path, streams: ProcessStreams, stdin: bool, stdin_once: bool, tty: bool
) -> None:
    """Join the container's main process until it exits, the client detaches or `cancelled` is set."""
    sock = _connect_attach_socket(attach_socket)
    output_done = threading.Event()
    stdin_done = threading.Event()
    threads = [start(_attach_output, sock, streams.stdout, streams.stderr, output_done)]
    if streams.stdin is not None and stdin:
        threads.append(start(_attach_input, streams.stdin, sock, stdin_done))
    if streams.resize is not None and tty:
        threads.append(start(pump_resize, streams.resize, lambda s: _resize_via_ctl(bundle, s)))
    try:
        while not streams.cancelled.wait(_TICK):
            if output_done.is_set():
                return  # the container exited (conmon closed the socket)
            if stdin_done.is_set() and not stdin_once and not tty:
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


def _resize_via_ctl(bundle: Path, size: TerminalSize) -> None:
    ctl.send(bundle, ctl.RESIZE, size.height, size.width)

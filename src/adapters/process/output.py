"""Reading a command's stdout and stderr with a size cap, a deadline, and no wait on descendants.

`Popen.communicate` reads without a limit (a CNI plugin printing without end fills the daemon's memory) and
reads until every writer has closed the pipes: a plugin that leaves a daemon behind holding its stdout made
the call wait for that daemon, past any timeout (docs/faults.md). Here the call ends when the command has
exited and its pipes are drained, when a stream passes `limit` bytes, or at the deadline; once the command
itself has exited, descendants that keep the pipes open get at most `EXIT_GRACE` seconds more.
"""

import contextlib
import math
import os
import select
import subprocess
import time
from dataclasses import dataclass, field

EXIT_GRACE = 1.0
_CHUNK = 65536


@dataclass
class Collected:
    stdout: bytes
    stderr: bytes
    exited: bool  # the command itself has exited (and was reaped): `returncode` is its status
    overflow: str = ""  # "stdout" or "stderr" when that stream passed the limit
    held_open: bool = False  # it exited, but a descendant kept its output open past EXIT_GRACE


@dataclass
class _Streams:
    chunks: dict[int, list[bytes]] = field(default_factory=dict)
    sizes: dict[int, int] = field(default_factory=dict)


def collect(process: subprocess.Popen[bytes], input: bytes | None, timeout: float, limit: int) -> Collected:
    """The command's output until it exits (or `timeout` seconds pass, or a stream passes `limit` bytes).
    The caller kills the command when `exited` is False; every pipe is closed on return."""
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + timeout
    out, err = process.stdout.fileno(), process.stderr.fileno()
    names = {out: "stdout", err: "stderr"}
    streams = _Streams({out: [], err: []}, {out: 0, err: 0})
    poller = select.poll()
    for fd in (out, err):
        poller.register(fd, select.POLLIN)
    pending = memoryview(input or b"")
    stdin = process.stdin.fileno() if process.stdin is not None else -1
    if stdin >= 0:
        os.set_blocking(stdin, False)
        poller.register(stdin, select.POLLOUT)
    pidfd = _pidfd(process)
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    open_reads = {out, err}
    exited_at: float | None = None
    overflow = ""
    try:
        while open_reads or exited_at is None:
            now = time.monotonic()
            if exited_at is None and process.poll() is not None:
                exited_at = now
            until = deadline if exited_at is None else min(deadline, exited_at + EXIT_GRACE)
            if now >= until or (exited_at is not None and not open_reads):
                break
            wait = until - now if pidfd >= 0 else min(until - now, 0.05)
            for fd, _ in poller.poll(math.ceil(wait * 1000)):
                if fd == pidfd:
                    poller.unregister(pidfd)
                    process.wait()
                elif fd == stdin:
                    pending = _feed(stdin, pending)
                    if not pending:
                        poller.unregister(stdin)
                        process.stdin.close()  # type: ignore[union-attr]
                        stdin = -1
                elif not _read(fd, streams):
                    poller.unregister(fd)
                    open_reads.discard(fd)
                elif streams.sizes[fd] > limit:
                    overflow = names[fd]
            if overflow:
                break
    finally:
        if pidfd >= 0:
            os.close(pidfd)
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
    exited = process.poll() is not None
    return Collected(
        b"".join(streams.chunks[out])[: limit + 1],
        b"".join(streams.chunks[err])[: limit + 1],
        exited and not overflow,
        overflow,
        held_open=exited and bool(open_reads) and not overflow,
    )


def _pidfd(process: subprocess.Popen[bytes]) -> int:
    """A descriptor readable once the command exits; -1 where there is none (then it is polled)."""
    if not hasattr(os, "pidfd_open") or process.poll() is not None:
        return -1
    try:
        return os.pidfd_open(process.pid)
    except OSError:
        return -1


def _feed(fd: int, pending: memoryview) -> memoryview:
    """Write what the pipe takes now; a command that closed its stdin gets no more."""
    try:
        return pending[os.write(fd, pending[:_CHUNK]) :]
    except BlockingIOError:
        return pending
    except OSError:  # EPIPE: it stopped reading, which is its business
        return pending[len(pending) :]


def _read(fd: int, streams: _Streams) -> bool:
    """One chunk into the stream's buffer; False at its end."""
    try:
        chunk = os.read(fd, _CHUNK)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    streams.chunks[fd].append(chunk)
    streams.sizes[fd] += len(chunk)
    return True

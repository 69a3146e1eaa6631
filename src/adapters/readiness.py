"""Waiting for a descriptor to become readable, for any descriptor number, and without a timer.

select() takes only descriptors below FD_SETSIZE (1024): a daemon with many containers, streams and
connections open passes that, and select() then fails with "filedescriptor out of range". poll() has no
such limit, so every wait in pycrio goes through here.

A background thread that waits for its descriptor and must also notice `stop()` waits on a `Wakeup` too,
with no timeout: an idle daemon then has no thread that wakes up only to look at a stop flag.
"""

import math
import os
import select
import socketserver
import threading
from collections.abc import Callable, Sequence
from typing import Protocol


class HasFileno(Protocol):
    def fileno(self) -> int: ...


def wait_readable(fd: int | HasFileno, timeout: float) -> bool:
    """True once `fd` is readable (or at its end, or in error: a read then tells which), False after
    `timeout` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(math.ceil(max(timeout, 0.0) * 1000)))


def readable(fds: Sequence[int | HasFileno], timeout: float | None = None) -> set[int]:
    """The descriptor numbers of `fds` that are readable, as soon as any is; empty after `timeout`
    seconds (None: wait as long as it takes)."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    wait_ms = None if timeout is None else math.ceil(max(timeout, 0.0) * 1000)
    return {fd for fd, _ in poller.poll(wait_ms)}


class Wakeup:
    """An eventfd that `set()` makes readable from any thread, to end a wait in `readable()`."""

    def __init__(self) -> None:
        self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    def fileno(self) -> int:
        return self._fd

    def set(self) -> None:
        if self._fd >= 0:
            os.eventfd_write(self._fd, 1)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class WatchThread:
    """A background service's one thread: `loop(stop)` runs until `stop` (a Wakeup) becomes readable, which
    `stop()` makes happen, then joins the thread (up to `join_timeout` seconds)."""

    def __init__(self, name: str, loop: Callable[[Wakeup], None], join_timeout: float = 10.0) -> None:
        self._name = name
        self._loop = loop
        self._join_timeout = join_timeout
        self._stop: Wakeup | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop = Wakeup()
        self._thread = threading.Thread(target=self._loop, args=(self._stop,), name=self._name, daemon=True)
        self._thread.start()

    def stop(self) -> bool:
        """True once the thread has ended. A thread still running after the join (its callback is stuck) is
        left with its Wakeup open: closing a descriptor it polls would let it poll whatever file reuses the
        number. The caller must then keep its own descriptors open too."""
        if self._stop is not None:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._join_timeout)
            if self._thread.is_alive():
                return False
            self._thread = None
        if self._stop is not None:
            self._stop.close()
            self._stop = None
        return True


def serve_until_stopped(server: socketserver.TCPServer, stop: Wakeup) -> None:
    """Accept connections until `stop` is set; socketserver's serve_forever would wake every 0.5 s to
    look for a shutdown. The server's `timeout` must be 0, so that handle_request() never waits."""
    while stop.fileno() not in readable([server.fileno(), stop]):
        server.handle_request()

"""Is a process (a pod's infra process, a container's monitor) still running? Answered with one poll(2) on a
pidfd kept per process.

ListPodSandbox asks this for every pod on every call (the kubelet polls it every second). Reading
/proc/<pid>/stat each time costs about ten times a poll on a pidfd, which becomes readable when the process
exits (a zombie counts as exited, as it does for the /proc check) and can never name a reused pid.
The first check still compares /proc's start time, before and after opening the pidfd, so the pidfd is
known to be the recorded process. Past `max_fds` processes, or where pidfds are missing, every check reads
/proc as before. The pidfds are also kept in one epoll set, so that `exited` answers for all of them with
one epoll_wait, and a watcher can sleep on that set until one of them exits (pidfd_watcher.py).
"""

import contextlib
import os
import select
import threading
from collections.abc import Iterable

from adapters.namespaces.linux import process_start_time


class ProcessLiveness:
    def __init__(self, max_fds: int = 512) -> None:
        self._max_fds = max_fds
        self._fds: dict[tuple[int, int], int] = {}
        # Held across the poll too, so forget() never closes an fd (letting its number be reused) mid-poll.
        self._lock = threading.Lock()
        self._pidfds = hasattr(os, "pidfd_open")
        self._epoll = select.epoll()  # every pidfd in _fds: level-triggered, readable once the process exited

    def alive(self, pid: int, start_time: int) -> bool:
        key = (pid, start_time)
        with self._lock:
            fd = self._fds.get(key)
            if fd is not None:
                if _exited(fd):
                    self._drop(key, fd)
                    return False
                return True
        if process_start_time(pid) != start_time:
            return False
        self._watch(key)
        return True

    def exited(self, keys: Iterable[tuple[int, int]]) -> set[tuple[int, int]]:
        """Those of the (pid, start time) pairs whose process no longer runs. Watched ones are answered by one
        epoll_wait for all; others are checked one by one as `alive` does."""
        gone: set[tuple[int, int]] = set()
        unwatched = []
        with self._lock:
            ready = {fd for fd, _ in self._epoll.poll(0)} if self._fds else set()
            if not ready:  # the usual answer: none exited, only processes not watched yet need a look
                unwatched = [key for key in keys if key not in self._fds]
            else:
                for key in keys:
                    fd = self._fds.get(key)
                    if fd is None:
                        unwatched.append(key)
                    elif fd in ready:
                        self._drop(key, fd)
                        gone.add(key)
        gone.update(key for key in unwatched if not self.alive(*key))
        return gone

    def fileno(self) -> int:
        """Readable while a watched process has exited and `take_exited` has not yet handed it out."""
        return self._epoll.fileno()

    def take_exited(self) -> set[tuple[int, int]]:
        """The watched processes that have exited since the last call, no longer watched: later checks of
        them read /proc (and find them gone), and the epoll set is quiet again."""
        with self._lock:
            ready = {fd for fd, _ in self._epoll.poll(0)} if self._fds else set()
            gone = {key: fd for key, fd in self._fds.items() if fd in ready}
            for key, fd in gone.items():
                self._drop(key, fd)
        return set(gone)

    def forget(self, pid: int, start_time: int) -> None:
        """The process is no longer asked about (its pod was stopped): close its pidfd."""
        with self._lock:
            fd = self._fds.get((pid, start_time))
            if fd is not None:
                self._drop((pid, start_time), fd)

    def _drop(self, key: tuple[int, int], fd: int) -> None:
        """Stop watching (the caller holds the lock)."""
        del self._fds[key]
        with contextlib.suppress(OSError):
            self._epoll.unregister(fd)
        os.close(fd)

    def _watch(self, key: tuple[int, int]) -> None:
        if not self._pidfds or len(self._fds) >= self._max_fds:
            return
        try:
            fd = os.pidfd_open(key[0])
        except OSError:  # gone already, or no pidfd support in this kernel
            return
        if process_start_time(key[0]) != key[1]:  # the pid was reused between the two reads
            os.close(fd)
            return
        with self._lock:
            if key in self._fds or len(self._fds) >= self._max_fds:
                os.close(fd)
            else:
                self._fds[key] = fd
                self._epoll.register(fd, select.EPOLLIN)


def _exited(pidfd: int) -> bool:
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    return bool(poller.poll(0))

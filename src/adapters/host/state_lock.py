"""One daemon per state dir: an exclusive flock on a file in `runtime.root` and in `runtime.run_dir`.

Two daemons on one root (or one run dir) would each restore the same records, roll back each other's pods
mid-creation, reuse one runc root and one exit dir, and wipe would pull the state from under a live
daemon. The socket check does not catch them when their `grpc.listen` differs. The kernel drops a flock
when its holder dies, kill -9 included, so a restart after a crash is never refused. The descriptor is
close-on-exec: conmon and the containers outlive the daemon and must not keep the lock held.
"""

import errno
import fcntl
import os
from pathlib import Path

LOCK_NAME = "pycrio.lock"


class StateDirInUse(Exception):
    """Another live process holds the lock of a state dir."""


class StateDirLock:
    """Held from `acquire` until `release` or the end of the process."""

    def __init__(self, *directories: Path) -> None:
        # Once per dir: a second flock of the same file from this process would refuse this process.
        unique = dict.fromkeys(directory.resolve() for directory in directories)
        self._paths = [directory / LOCK_NAME for directory in unique]
        self._fds: list[int] = []

    def acquire(self) -> "StateDirLock":
        try:
            for path in self._paths:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
                self._fds.append(fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError as err:
                    if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                        raise
                    raise StateDirInUse(
                        f"{path.parent} is in use by another pycrio (pid {_holder(fd)}); "
                        "give each daemon its own runtime.root and runtime.run_dir"
                    ) from None
                # The holder's pid, for the message above and for operators; the lock is the flock.
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BaseException:
            self.release()
            raise
        return self

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds = []


def _holder(fd: int) -> str:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return text if text.isdigit() else "unknown"

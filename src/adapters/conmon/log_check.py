"""Whether conmon opened the log file pycrio checked, and not what a swapped name pointed to.

pycrio makes the kubelet's log file without following symlinks, but conmon then opens that path by name
(at start, and `<log>.tmp` at every reopen) and follows whatever is there. Whoever can write into the log
directory may swap the file for a symlink between the two. conmon cannot be handed a descriptor, so the
window is closed after the fact, before anything is written through it: conmon's open descriptors are
compared with the checked file's (device, inode), and a conmon holding none of them is killed.
"""

import contextlib
import os
import signal

from adapters.readiness import wait_readable
from domain.errors import InvalidArgument

_EXIT_WAIT = 10.0  # seconds; a SIGKILLed process is gone far sooner


def holds_file(pid: int, identity: tuple[int, int]) -> bool:
    """Whether process `pid` has a descriptor open on the file with this (st_dev, st_ino)."""
    directory = f"/proc/{pid}/fd"
    try:
        names = os.listdir(directory)
    except OSError:
        return False
    for name in names:
        try:
            info = os.stat(f"{directory}/{name}")  # follows the descriptor to its open file
        except OSError:
            continue
        if (info.st_dev, info.st_ino) == identity:
            return True
    return False


def require_log_held(pid: int, identity: tuple[int, int], log_path: str, when: str) -> None:
    """Kill conmon `pid` and refuse with InvalidArgument unless it holds the checked log file."""
    if pid > 0 and holds_file(pid, identity):
        return
    if pid > 0:
        _kill_and_wait(pid)  # nothing more goes through a descriptor on the wrong file
    raise InvalidArgument(
        f"log_path: {log_path[:200]!r} was replaced (a symbolic link?) before conmon opened it {when}; "
        "conmon was stopped"
    )


def _kill_and_wait(pid: int) -> None:
    """SIGKILL through a pidfd (conmon is not the daemon's child, so it cannot be waited for), and wait
    until it has exited: once the refusal is returned, no descriptor of it is left open."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return  # already gone
    try:
        with contextlib.suppress(OSError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        wait_readable(pidfd, _EXIT_WAIT)  # readable once the process has exited
    finally:
        os.close(pidfd)

"""Make the daemon the reaper of the processes its children orphan.

conmon double-forks and runc's exec helpers can outlive their parents. On this kind of node PID 1 reaps
only every few seconds (or not at all in a container), so orphans would linger as zombies; as a child
subreaper the daemon inherits them and can wait for them itself.
"""

import ctypes
import ctypes.util

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper() -> bool:
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)

"""Killing a process with everything it started, when they are not in a process group or cgroup of their own
to kill at once (conmon and the runtime it waits on, an exec's process tree)."""

import contextlib
import os
import signal


def kill_tree(root: int) -> None:
    """SIGKILL a process and all its descendants: stop them first, so none can fork past the snapshot. The
    survivors' orphans are re-parented to the daemon (their subreaper), which reaps them."""
    if root <= 0:  # 0 and -1 would signal this daemon's own process group, or every process
        return
    stopped: set[int] = set()
    while True:
        tree = {root, *descendants(root)} - stopped
        if not tree:
            break
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        stopped |= tree
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` now, from /proc's children lists."""
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

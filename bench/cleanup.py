"""Best-effort removal of whatever a run left on the host, for when the CRI could not remove it.

The normal path removes pods through the runtime itself. These functions are the backstop after a crash
or an interrupt: kill the processes in the run's cgroup tree and its runtime's helpers, unmount what is
mounted under the run's dir, remove the cgroups. Each step goes on when one item fails.
"""

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from adapters.process.runner import run
from bench import procstat

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_dirs(parent: str) -> list[Path]:
    """`parent` (like "/pcbench-x") in every mounted hierarchy: each v1 controller and the unified one."""
    relative = parent.strip("/")
    if not relative or not CGROUP_ROOT.is_dir():
        return []
    found = []
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        candidate = hierarchy / relative
        if candidate.is_dir():
            found.append(candidate)
    return found


def _pids_in(tree: Path) -> set[int]:
    pids: set[int] = set()
    for dirpath, _, filenames in os.walk(tree):
        if "cgroup.procs" in filenames:
            with contextlib.suppress(OSError):
                pids.update(int(line) for line in Path(dirpath, "cgroup.procs").read_text().split())
    return pids


def kill_cgroup_tree(parent: str, wait: float = 10.0) -> None:
    """SIGKILL every process in the cgroup tree `parent`, then remove its directories, deepest first."""
    trees = cgroup_dirs(parent)
    deadline = time.monotonic() + wait
    while True:
        pids = set().union(*(_pids_in(tree) for tree in trees)) if trees else set()
        if not pids or time.monotonic() > deadline:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for tree in trees:
        for dirpath, _, _ in sorted(os.walk(tree), key=lambda item: -len(item[0])):
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def kill_processes(select: Callable[[procstat.ProcessInfo], bool]) -> list[int]:
    killed = []
    for info in procstat.processes():
        if info.pid != os.getpid() and select(info):
            with contextlib.suppress(ProcessLookupError):
                os.kill(info.pid, signal.SIGKILL)
                killed.append(info.pid)
    return killed


def mounts_under(root: Path, mountinfo: str) -> list[str]:
    """Mount points at or below `root`, deepest first (mountinfo's 5th field, octal escapes decoded)."""
    prefix = str(root).rstrip("/")
    points = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = fields[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(set(points), key=len, reverse=True)


def unmount_under(root: Path) -> None:
    for _ in range(3):  # stacked mounts need more than one pass
        points = mounts_under(root, Path("/proc/self/mountinfo").read_text())
        if not points:
            return
        for point in points:
            with contextlib.suppress(Exception):
                run(["umount", "--lazy", point], timeout=30)


def remove_tree(root: Path) -> None:
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)


def best_effort(steps: Iterable[Callable[[], object]]) -> list[str]:
    """Run every step; return the errors instead of stopping at the first."""
    errors = []
    for step in steps:
        try:
            step()
        except Exception as error:
            errors.append(f"{getattr(step, '__name__', step)}: {error}")
    return errors

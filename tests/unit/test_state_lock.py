"""The state-dir lock: a second holder is refused with the first one's pid, a dead or released holder frees
it, and processes the daemon starts (conmon, runc) do not keep it."""

import subprocess
import sys
from pathlib import Path

import pytest

from adapters.host.state_lock import LOCK_NAME, StateDirInUse, StateDirLock

SRC = Path(__file__).resolve().parents[2] / "src"


def test_a_second_holder_is_refused_naming_the_dir_and_the_first_pid(tmp_path: Path) -> None:
    root, run, other = tmp_path / "root", tmp_path / "run", tmp_path / "other"
    for directory in (root, run, other):
        directory.mkdir()
    first = StateDirLock(root, run).acquire()
    try:
        with pytest.raises(StateDirInUse, match=rf"{run} is in use by another pycrio \(pid \d+\)"):
            StateDirLock(other, run).acquire()
        with pytest.raises(StateDirInUse, match=str(root)):
            StateDirLock(root).acquire()
    finally:
        first.release()
    StateDirLock(root, run).acquire().release()  # released: free again


def test_the_same_dir_twice_is_locked_once(tmp_path: Path) -> None:
    StateDirLock(tmp_path, tmp_path / ".").acquire().release()


def test_a_killed_holder_frees_the_lock(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(SRC)!r}); "
         "from pathlib import Path; from adapters.host.state_lock import StateDirLock; "
         f"StateDirLock(Path({str(tmp_path)!r})).acquire(); print('held', flush=True); input()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(StateDirInUse, match=f"pid {holder.pid}"):
            StateDirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    StateDirLock(tmp_path).acquire().release()


def test_a_child_started_while_held_does_not_keep_it(tmp_path: Path) -> None:
    lock = StateDirLock(tmp_path).acquire()
    child = subprocess.Popen(["sleep", "60"], close_fds=False)
    try:
        lock.release()
        StateDirLock(tmp_path).acquire().release()
        assert (tmp_path / LOCK_NAME).read_text().strip().isdigit()
    finally:
        child.kill()
        child.wait()

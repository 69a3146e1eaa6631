"""kill_tree ends a process and what it started (conmon and a hung runtime, an exec's processes)."""

import subprocess
import time

from adapters.process.tree import descendants, kill_tree


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_process_and_its_children_are_killed() -> None:
    parent = subprocess.Popen(["sh", "-c", "sleep 600 & sleep 600 & wait"])
    try:
        for _ in range(3000):  # until the shell has started both
            children = descendants(parent.pid)
            if len(children) == 2:
                break
            time.sleep(0.01)
        assert len(children) == 2
        kill_tree(parent.pid)
        assert parent.wait(30) == -9
        for child in children:  # re-parented to init (or a subreaper) once the shell died
            for _ in range(3000):
                if _gone(child):
                    break
                time.sleep(0.01)
            assert _gone(child)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


def test_no_pid_is_a_no_op() -> None:
    kill_tree(0)  # would be this process group
    kill_tree(-1)  # would be every process

"""ProcessLiveness against real child processes: the pidfd answer matches /proc's, and fds are released."""

import contextlib
import os
import subprocess
import threading
from collections.abc import Iterator

import pytest

from adapters.namespaces.linux import process_start_time
from adapters.process.liveness import ProcessLiveness
from adapters.process.pidfd_watcher import PidfdExitWatcher
from adapters.readiness import wait_readable


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "60"])
    yield process
    process.kill()
    process.wait()


def _start_time(pid: int) -> int:
    start = process_start_time(pid)
    assert start is not None
    return start


def _open_fds() -> int:
    """The process's open pidfds: other threads of the test process (gRPC, earlier tests' daemons) open and
    close other descriptors at any time, so a count of all of them is not this test's to make."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since the listing
            count += os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[pidfd]"
    return count


def test_running_then_exited_zombie_counts_as_exited(child: subprocess.Popen[bytes]) -> None:
    liveness = ProcessLiveness()
    start = _start_time(child.pid)
    assert liveness.alive(child.pid, start)
    assert liveness.alive(child.pid, start)  # the second answer comes from the pidfd
    child.kill()
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped: a zombie
    assert not liveness.alive(child.pid, start)
    assert not liveness.alive(child.pid, start)


def test_another_start_time_is_another_process(child: subprocess.Popen[bytes]) -> None:
    liveness = ProcessLiveness()
    start = _start_time(child.pid)
    assert not liveness.alive(child.pid, start + 1)
    assert liveness.alive(child.pid, start)
    assert not liveness.alive(child.pid, start - 1)


def test_forget_and_exit_close_the_pidfd(child: subprocess.Popen[bytes]) -> None:
    liveness = ProcessLiveness()
    start = _start_time(child.pid)
    before = _open_fds()
    assert liveness.alive(child.pid, start)
    assert _open_fds() == before + 1
    liveness.forget(child.pid, start)
    assert _open_fds() == before
    assert liveness.alive(child.pid, start)
    child.kill()
    child.wait()
    assert not liveness.alive(child.pid, start)
    assert _open_fds() == before


def test_past_the_cap_it_reads_proc_each_time(child: subprocess.Popen[bytes]) -> None:
    liveness = ProcessLiveness(max_fds=0)
    start = _start_time(child.pid)
    before = _open_fds()
    assert liveness.alive(child.pid, start)
    assert _open_fds() == before
    child.kill()
    child.wait()
    assert not liveness.alive(child.pid, start)


def test_exited_answers_for_all_with_one_look_and_releases_the_pidfds(child: subprocess.Popen[bytes]) -> None:
    liveness = ProcessLiveness()
    other = subprocess.Popen(["sleep", "60"])
    try:
        keys = [(child.pid, _start_time(child.pid)), (other.pid, _start_time(other.pid))]
        before = _open_fds()
        assert liveness.exited(keys) == set()  # not watched yet: read from /proc, then watched
        assert _open_fds() == before + 2
        assert liveness.exited(keys) == set()
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # a zombie counts as exited
        assert liveness.exited(keys) == {keys[0]}
        assert _open_fds() == before + 1
        assert liveness.exited(keys) == {keys[0]}
        assert not liveness.alive(*keys[0]) and liveness.alive(*keys[1])
        assert liveness.exited([(other.pid, keys[1][1] + 1)]) == {
            (other.pid, keys[1][1] + 1)
        }  # another process
    finally:
        other.kill()
        other.wait()


def test_exited_past_the_cap_reads_proc(child: subprocess.Popen[bytes]) -> None:
    liveness = ProcessLiveness(max_fds=0)
    key = (child.pid, _start_time(child.pid))
    assert liveness.exited([key]) == set()
    child.kill()
    child.wait()
    assert liveness.exited([key]) == {key}


def test_take_exited_hands_each_exit_out_once_and_later_checks_still_see_it(
    child: subprocess.Popen[bytes],
) -> None:
    liveness = ProcessLiveness()
    key = (child.pid, _start_time(child.pid))
    assert liveness.alive(*key)
    assert liveness.take_exited() == set()
    child.kill()
    child.wait()
    assert wait_readable(liveness, 30)  # the epoll set wakes a sleeper
    assert liveness.take_exited() == {key}
    assert not wait_readable(liveness, 0)
    assert liveness.take_exited() == set()
    assert liveness.exited([key]) == {key}  # from /proc now
    assert not liveness.alive(*key)


def test_the_pidfd_exit_watcher_wakes_the_set_whose_process_exited(child: subprocess.Popen[bytes]) -> None:
    liveness, other = ProcessLiveness(), ProcessLiveness()
    key = (child.pid, _start_time(child.pid))
    assert liveness.alive(*key)
    assert other.alive(os.getpid(), _start_time(os.getpid()))  # runs as long as the test
    woken = threading.Event()
    others_woken = threading.Event()
    watcher = PidfdExitWatcher([(other, others_woken.set), (liveness, woken.set)])
    watcher.start()
    try:
        child.kill()  # a zombie until the fixture reaps it: exited all the same
        assert woken.wait(30)
    finally:
        watcher.stop()
    assert not others_woken.is_set()
    assert liveness.take_exited() == set()  # the watcher took it
    assert liveness.exited([key]) == {key}

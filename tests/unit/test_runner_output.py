"""runner.run's reading of a command's output: capped, bounded by the deadline, and not held up by a
descendant that keeps the pipes open after the command itself exited (docs/faults.md)."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from adapters.process import runner
from domain.errors import DeadlineExceeded, Internal
from tests.e2e.containers_support import wait_until


def test_the_output_and_the_input_pass_whole() -> None:
    data = os.urandom(300_000)  # more than a pipe holds: written while the output is read
    result = runner.run(["cat"], timeout=30, input=data)
    assert result.stdout == data
    assert result.returncode == 0


def test_an_endless_output_is_cut_at_the_limit_and_the_command_killed(tmp_path: Path) -> None:
    with pytest.raises(Internal) as caught:
        runner.run(["sh", "-c", f"echo $$ > {tmp_path}/pid; exec yes"], timeout=60, output_limit=1 << 20)
    assert "printed more than 1048576 bytes on stdout" in str(caught.value)
    pid = int((tmp_path / "pid").read_text())
    assert runner.wait_gone(pid, 30)


def test_an_endless_stderr_is_cut_too() -> None:
    with pytest.raises(Internal) as caught:
        runner.run(["sh", "-c", "yes >&2"], timeout=60, output_limit=1 << 16)
    assert "on stderr" in str(caught.value)


def test_a_descendant_holding_the_output_open_does_not_hold_the_answer(tmp_path: Path) -> None:
    """The command exits at once; the process it leaves in a session of its own keeps stdout open for as
    long as it lives. Before, the call waited for it, past the timeout: forever for a daemon."""
    script = f"setsid sh -c 'echo $$ > {tmp_path}/left; exec sleep 100000' & echo answer"
    try:
        result = runner.run(["sh", "-c", script], timeout=3600)
        assert result.stdout == b"answer\n"
        assert result.returncode == 0
    finally:
        wait_until(lambda: (tmp_path / "left").exists(), what="the left process to write its pid")
        os.kill(int((tmp_path / "left").read_text()), signal.SIGKILL)


def test_a_hung_command_with_a_held_output_is_cut_at_the_deadline(tmp_path: Path) -> None:
    script = f"setsid sh -c 'echo $$ > {tmp_path}/left; exec sleep 100000' & exec sleep 100000"
    try:
        with pytest.raises(DeadlineExceeded):
            runner.run(["sh", "-c", script], timeout=1)
    finally:
        wait_until(lambda: (tmp_path / "left").exists(), what="the left process to write its pid")
        os.kill(int((tmp_path / "left").read_text()), signal.SIGKILL)


def test_a_command_that_cannot_start_for_want_of_descriptors_is_resource_exhausted() -> None:
    """In a child interpreter whose RLIMIT_NOFILE leaves no descriptor free: the pipes or /dev/null cannot
    be opened, which is the node's state, named with the command (before: the bare OSError, INTERNAL)."""
    script = """
import resource, sys
sys.path.insert(0, "src")
from adapters.process import runner
from domain.errors import ResourceExhausted
resource.setrlimit(resource.RLIMIT_NOFILE, (3, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
try:
    runner.run(["true"], timeout=10)
except ResourceExhausted as err:
    print(err)
"""
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    said = answer.stdout + answer.stderr
    assert answer.stdout.startswith("cannot start true: out of file descriptors"), said

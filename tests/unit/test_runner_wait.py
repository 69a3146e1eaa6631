"""runner.wait: Popen.wait's answers (exit status, TimeoutExpired), without its polling sleeps."""

import subprocess

import pytest

from adapters.process import runner


def _spawn(*args: str) -> subprocess.Popen[bytes]:
    return runner.spawn(list(args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def test_returns_the_exit_status() -> None:
    process = _spawn("sh", "-c", "exit 7")
    try:
        assert runner.wait(process, 10) == 7
        assert process.returncode == 7
    finally:
        runner.release(process)


def test_a_process_past_the_timeout_is_left_running() -> None:
    process = _spawn("sleep", "30")
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            runner.wait(process, 0.05)
        assert process.poll() is None
        process.kill()
        assert runner.wait(process, 10) == -9
    finally:
        runner.release(process)


def test_an_already_reaped_process_and_no_timeout() -> None:
    process = _spawn("true")
    try:
        assert runner.wait(process, None) == 0
        assert runner.wait(process, 1) == 0  # reaped already: no pidfd to open, Popen's answer
    finally:
        runner.release(process)

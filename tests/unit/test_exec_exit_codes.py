"""A streaming exec's exit code when the OCI runtime itself dies of a signal: 128+N, as a shell reports it."""

import signal
import threading
from pathlib import Path

import pytest

from adapters.runc.exec_streams import exec_with_streams, shell_exit_code
from ports.streaming import ProcessStreams
from tests.fakes.streaming import CollectedOutput


def _streams() -> ProcessStreams:
    return ProcessStreams(
        stdin=None,
        stdout=CollectedOutput(),
        stderr=CollectedOutput(),
        tty=False,
        resize=None,
        cancelled=threading.Event(),
    )


@pytest.mark.parametrize(("returncode", "expected"), [(0, 0), (3, 3), (-9, 137), (-15, 143)])
def test_shell_exit_code(returncode: int, expected: int) -> None:
    assert shell_exit_code(returncode) == expected


def test_runtime_killed_by_a_signal_reads_as_128_plus_n(tmp_path: Path) -> None:
    # A stand-in runtime that kills itself: `sh -c 'kill -KILL $$' runtime exec --process ...`.
    runtime = ["sh", "-c", f"kill -{signal.SIGKILL.name[3:]} $$", "runtime"]
    code = exec_with_streams(runtime, "c" * 64, {"args": ["true"]}, _streams(), tmp_path)
    assert code == 128 + signal.SIGKILL


def test_runtime_exit_code_is_passed_through(tmp_path: Path) -> None:
    code = exec_with_streams(
        ["sh", "-c", "exit 7", "runtime"], "c" * 64, {"args": ["true"]}, _streams(), tmp_path
    )
    assert code == 7

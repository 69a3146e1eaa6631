"""A second daemon (or a wipe) on a running daemon's state dirs is refused with a clear error, even when its
socket differs; once the first is killed with SIGKILL, a restart on the same dirs is not refused."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import REPO, Daemon

pytestmark = pytest.mark.root


def _run(daemon: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    return subprocess.run([*daemon.command(), *args], capture_output=True, text=True, timeout=120, env=env)


def test_a_second_daemon_on_the_same_dirs_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    second = Daemon(daemon.workdir, [f'grpc.listen="unix://{tmp_path / "second.sock"}"'])
    refused = _run(second)
    assert refused.returncode == 1
    first = daemon.process.pid if daemon.process is not None else 0
    assert f"{daemon.workdir / 'root'} is in use by another pycrio (pid {first})" in refused.stderr
    assert not (tmp_path / "second.sock").exists()
    wipe = _run(second, "wipe", "--yes")
    assert wipe.returncode == 1
    assert "is in use by another pycrio" in wipe.stderr
    daemon.client.runtime.Version(pb.VersionRequest())
    assert (daemon.workdir / "root").is_dir()

    assert daemon.stop(signal.SIGKILL) != 0
    daemon.start()  # a killed holder leaves no lock behind
    daemon.client.runtime.Version(pb.VersionRequest())

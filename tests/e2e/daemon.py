"""Start the real pycrio daemon as a subprocess on private dirs and talk to it over gRPC."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from adapters.process import runner
from tests.cri_client import CriClient, connect, wait_for_socket
from tests.fixtures.registry import RunningRegistry, registries_conf_text

REPO = Path(__file__).resolve().parents[2]


class Daemon:
    def __init__(self, workdir: Path, settings: Sequence[str] = ()) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "run" / "pycrio.sock"
        self.log_path = workdir / "daemon.log"
        # The node's trust configuration, private to this daemon: accept anything unless a test says so.
        self.policy_file = workdir / "policy.json"
        if not self.policy_file.exists():
            self.policy_file.write_text('{"default": [{"type": "insecureAcceptAnything"}]}\n')
        for directory in ("policies", "registries.d"):
            (workdir / directory).mkdir(exist_ok=True)
        self.settings = [
            f'grpc.listen="unix://{self.socket}"',
            f'runtime.root="{workdir / "root"}"',
            f'runtime.run_dir="{workdir / "run"}"',
            f'image.signature_policy="{self.policy_file}"',
            f'image.signature_policy_dir="{workdir / "policies"}"',
            f'image.registries_d="{workdir / "registries.d"}"',
            "log.level=debug",
            *settings,
        ]
        self.process: subprocess.Popen[bytes] | None = None
        self._client: CriClient | None = None

    def command(self) -> list[str]:
        # An explicit --config must exist; an empty one keeps the host's /etc/pycrio out of the test.
        config = self.workdir / "pycrio.toml"
        config.touch()
        args = [sys.executable, "-m", "app.main", "--config", str(config)]
        for setting in self.settings:
            args += ["--set", setting]
        return args

    def start(self) -> "Daemon":
        env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
        log = self.log_path.open("ab")
        # Through the runner: the contract suites' orphan reaper (same test process) must leave this child's
        # exit to Popen.wait, or a SIGKILLed daemon reads as exit code 0.
        self.process = runner.spawn(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for_socket(self.socket)
            self._wait_until_served()
        except TimeoutError:
            self.stop()
            raise RuntimeError(f"pycrio did not start:\n{self.log()}") from None
        return self

    def _wait_until_served(self, timeout: float = 60.0) -> None:
        """Until the socket accepts: after a SIGKILL the old daemon's socket file is still there, and a test
        must not look at the host before the new daemon has restored and recovered (which comes first)."""
        deadline = time.monotonic() + timeout
        while True:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
                try:
                    probe.connect(str(self.socket))
                    return
                except (ConnectionRefusedError, FileNotFoundError):
                    pass
            if self.process is None or self.process.poll() is not None or time.monotonic() > deadline:
                raise TimeoutError(f"{self.socket} is not served")
            time.sleep(0.05)

    @property
    def client(self) -> CriClient:
        if self._client is None:
            self._client = connect(self.socket)
        return self._client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        runner.release(self.process)
        self.process = None
        return code


def pulling_daemon(tmp_path: Path, registry: RunningRegistry, *settings: str) -> Daemon:
    """A started daemon that pulls from `registry` alone (its own registries.conf, no drop-in dir, no CNI)."""
    conf = tmp_path / "registries.conf"
    conf.write_text(registries_conf_text(registry))
    return Daemon(
        tmp_path / "pycrio",
        [
            f'image.registries_conf="{conf}"',
            f'image.registries_conf_dir="{tmp_path / "none"}"',
            f'network.cni_conf_dir="{tmp_path}"',
            *settings,
        ],
    ).start()

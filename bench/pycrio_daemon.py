"""pycrio started the way tests/e2e/daemon.py does: `python -m app.main --set ...` on private dirs.

Its registries.conf marks the bench registry insecure (plain HTTP), and it reads the same CNI config dir
as containerd. Its helpers are the conmon processes whose command line names its dirs.
"""

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path

from adapters.process.runner import spawn
from bench import procstat
from bench.cri import CriConnection, connect
from bench.floor import Floor, floor_server

PYCRIO_SRC = Path(__file__).resolve().parents[1] / "src"
MONITOR_NAMES = ("conmon",)


def registries_conf(registry_host: str) -> str:
    """containers-registries.conf(5) v2: the bench registry over plain HTTP, no search registries."""
    return (
        f'unqualified-search-registries = []\n\n[[registry]]\nlocation = "{registry_host}"\ninsecure = true\n'
    )


def pycrio_settings(
    workdir: Path, run_dir: Path, cni_conf_dir: Path, cni_bin_dir: str = "/usr/lib/cni"
) -> list[str]:
    """The `--set` flags that keep pycrio's every path inside `workdir` and `run_dir` (short: sockets)."""
    return [
        f'grpc.listen="unix://{run_dir / "pycrio.sock"}"',
        f'runtime.root="{workdir / "root"}"',
        f'runtime.run_dir="{run_dir}"',
        f'runtime.runtimes.runc.root="{run_dir / "runc"}"',
        f'runtime.runtimes.crun.root="{run_dir / "crun"}"',
        'runtime.cgroup_driver="cgroupfs"',
        f'network.cni_conf_dir="{cni_conf_dir}"',
        f"network.cni_plugin_dirs={json.dumps([cni_bin_dir])}",
        f'image.registries_conf="{workdir / "registries.conf"}"',
        f'image.registries_conf_dir="{workdir / "registries.conf.d"}"',
        f'image.signature_policy="{workdir / "policy.json"}"',
        f'image.signature_policy_dir="{workdir / "policies"}"',
        f'image.registries_d="{workdir / "registries.d"}"',
        'log.level="warning"',
    ]


class PycrioDaemon:
    name = "pycrio"

    def __init__(
        self,
        workdir: Path,
        run_dir: Path,
        cni_conf_dir: Path,
        registry_host: str,
        source: Path = PYCRIO_SRC,
        python: str = sys.executable,
    ) -> None:
        self.source = source
        self.workdir = workdir
        self.run_dir = run_dir
        self.cni_conf_dir = cni_conf_dir
        self.registry_host = registry_host
        self.python = python
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        return self.run_dir / "pycrio.sock"

    @property
    def endpoint(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.workdir / "pycrio.log"

    def command(self) -> list[str]:
        # An explicit --config must exist; an empty one keeps the host's /etc/pycrio out of the run.
        config = self.workdir / "pycrio.toml"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.touch()
        args = [self.python, "-m", "app.main", "--config", str(config)]
        for setting in pycrio_settings(self.workdir, self.run_dir, self.cni_conf_dir):
            args += ["--set", setting]
        return args

    def start(self, wait: float = 30.0) -> CriConnection:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "registries.conf").write_text(registries_conf(self.registry_host))
        (self.workdir / "registries.conf.d").mkdir(exist_ok=True)
        policy = {"default": [{"type": "insecureAcceptAnything"}]}
        (self.workdir / "policy.json").write_text(json.dumps(policy))
        log = self.log_path.open("ab")
        env = {
            "PYTHONPATH": str(self.source),
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        }
        if self.source.resolve() != PYCRIO_SRC.resolve():
            env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave another tree as it was
        self.process = spawn(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(self.source.parent),
            start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pycrio did not start: {self.log()}")
            time.sleep(0.05)
        return connect(self.endpoint, wait=max(1.0, deadline - time.monotonic()))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def floor(self, answers: Mapping[str, bytes] | None = None) -> AbstractContextManager[Floor]:
        """The floor server (bench/floor_server.py) on this daemon's interpreter and source tree."""
        return floor_server(self.python, self.source, self.run_dir, answers)

    def helper_processes(self) -> list[procstat.ProcessInfo]:
        markers = (str(self.workdir), str(self.run_dir))
        return [
            info
            for info in procstat.processes()
            if info.name in MONITOR_NAMES and any(marker in info.cmdline for marker in markers)
        ]

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None

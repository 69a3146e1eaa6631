"""containerd with its CRI plugin, on private dirs: the generated config.toml and the daemon process.

Every path containerd would default to a shared location (/var/lib/containerd, /run/containerd, runc's
root, /opt/containerd, network namespaces) is pointed into the run's temp dir. The exception containerd 1.6
does not let a config move: shim sockets live in /run/containerd/s/<hash of our address>, and each shim
removes its socket when it exits.
"""

import contextlib
import hashlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

from adapters.process.runner import spawn
from bench import procstat
from bench.cri import CriConnection, connect

CRI = "io.containerd.grpc.v1.cri"
SHIM_NAMES = ("containerd-shim-runc-v2", "containerd-shim")
SHIM_SOCKET_DIR = Path("/run/containerd/s")


@dataclass(frozen=True)
class ContainerdLayout:
    """The private dirs and socket of one containerd.

    Sockets and state go under `run_dir`, a short path: a unix socket path may not pass 108 bytes, and
    containerd refuses even 104.
    """

    workdir: Path
    run_dir: Path

    @property
    def root(self) -> Path:
        return self.workdir / "root"

    @property
    def state(self) -> Path:
        return self.run_dir / "state"

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.run_dir / "runc"

    @property
    def config(self) -> Path:
        return self.workdir / "config.toml"


def containerd_config(
    layout: ContainerdLayout,
    sandbox_image: str,
    registry_host: str,
    cni_conf_dir: Path,
    cni_bin_dir: str = "/usr/lib/cni",
) -> dict[str, Any]:
    """containerd's config (version 2) for a CRI plugin that runs pods with runc under cgroupfs.

    `restrict_oom_score_adj` clamps sandbox and container oom_score_adj to containerd's own: without
    CAP_SYS_RESOURCE, runc fails to lower it. The registry at `registry_host` is plain HTTP.
    """
    return {
        "version": 2,
        "root": str(layout.root),
        "state": str(layout.state),
        "oom_score": 0,
        "grpc": {"address": str(layout.socket)},
        "ttrpc": {"address": str(layout.socket) + ".ttrpc"},
        "debug": {"level": "warn"},
        "disabled_plugins": [
            "io.containerd.snapshotter.v1.aufs",
            "io.containerd.snapshotter.v1.btrfs",
            "io.containerd.snapshotter.v1.devmapper",
            "io.containerd.snapshotter.v1.zfs",
            "io.containerd.tracing.processor.v1.otlp",
        ],
        "plugins": {
            "io.containerd.internal.v1.opt": {"path": str(layout.workdir / "opt")},
            CRI: {
                "sandbox_image": sandbox_image,
                "restrict_oom_score_adj": True,
                "netns_mounts_under_state_dir": True,
                "enable_selinux": False,
                "disable_apparmor": True,
                "stream_server_address": "127.0.0.1",
                "stream_server_port": "0",
                "containerd": {
                    "snapshotter": "overlayfs",
                    "default_runtime_name": "runc",
                    "runtimes": {
                        "runc": {
                            "runtime_type": "io.containerd.runc.v2",
                            "options": {
                                "SystemdCgroup": False,
                                "BinaryName": "/usr/sbin/runc",
                                "Root": str(layout.runc_root),
                            },
                        }
                    },
                },
                "cni": {"bin_dir": cni_bin_dir, "conf_dir": str(cni_conf_dir), "max_conf_num": 1},
                "registry": {
                    "mirrors": {registry_host: {"endpoint": [f"http://{registry_host}"]}},
                    "configs": {registry_host: {"tls": {"insecure_skip_verify": True}}},
                },
            },
        },
    }


def render_config(config: dict[str, Any]) -> str:
    return tomli_w.dumps(config)


class ContainerdDaemon:
    """containerd started on a private layout; `stop` ends it and every shim it left."""

    name = "containerd"

    def __init__(self, layout: ContainerdLayout, config: dict[str, Any], binary: str = "containerd") -> None:
        self.layout = layout
        self.config = config
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"unix://{self.layout.socket}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def log_path(self) -> Path:
        return self.layout.workdir / "containerd.log"

    def start(self, wait: float = 30.0) -> CriConnection:
        self.layout.workdir.mkdir(parents=True, exist_ok=True)
        self.layout.run_dir.mkdir(parents=True, exist_ok=True)
        self.layout.config.write_text(render_config(self.config))
        log = self.log_path.open("ab")
        self.process = spawn(
            [self.binary, "--config", str(self.layout.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + wait
        while not self.layout.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"containerd did not start: {self.log()}")
            time.sleep(0.05)
        return connect(self.endpoint, wait=max(1.0, deadline - time.monotonic()))

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:] if self.log_path.exists() else ""

    def helper_processes(self) -> list[procstat.ProcessInfo]:
        """This containerd's shims: they name its socket on their command line."""
        address = str(self.layout.socket)
        return [info for info in procstat.processes() if info.name in SHIM_NAMES and address in info.cmdline]

    def stop(self, timeout: float = 20.0) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        for shim in self.helper_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(shim.pid, signal.SIGKILL)
            shim_id = _argument(shim.cmdline, "-id")
            if shim_id:
                with contextlib.suppress(FileNotFoundError):
                    shim_socket_path(self.layout.socket, shim_id).unlink()


def _argument(cmdline: str, flag: str) -> str:
    words = cmdline.split()
    return words[words.index(flag) + 1] if flag in words[:-1] else ""


def shim_socket_path(address: Path, shim_id: str, namespace: str = "k8s.io") -> Path:
    """Where containerd 1.6 puts a shim's socket: a hash of its address, namespace and id, in a fixed dir.

    A shim removes it on a clean exit; one killed by the cleanup leaves it behind unless removed here.
    """
    digest = hashlib.sha256(f"{address}/{namespace}/{shim_id}".encode()).hexdigest()
    return SHIM_SOCKET_DIR / digest

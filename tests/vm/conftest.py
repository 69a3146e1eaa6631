"""The in-VM suite of `make vm-test`: pycrio runs as the systemd unit contrib/systemd/pycrio.service on a
systemd + cgroup v2 guest (scripts/vm), once with cgroup_driver = systemd and once with cgroupfs.

Only collected inside that guest (scripts/vm/in-guest.sh sets PYCRIO_VM_GUEST=1): everywhere else these
files are not test modules at all. The guest has no network; the busybox image is put into pycrio's store
before the daemon starts (tests/e2e/containers_support.py).
"""

import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient, connect
from tests.e2e.containers_support import container_config, pod_config, seed_busybox_image, write_cni_conf

IN_GUEST = os.environ.get("PYCRIO_VM_GUEST") == "1"
collect_ignore_glob = [] if IN_GUEST else ["test_*.py"]

REPO = Path(__file__).resolve().parents[2]
UNIT = "pycrio.service"
UNIT_FILE = Path("/etc/systemd/system") / UNIT
DROP_IN = Path("/etc/systemd/system/pycrio.service.d/vm.conf")
CONFIG = Path("/etc/pycrio/pycrio.toml")
CGROUP_ROOT = Path("/sys/fs/cgroup")
MIB = 1 << 20


def systemctl(*args: str, check: bool = True) -> str:
    result = subprocess.run(["systemctl", *args], capture_output=True, text=True, timeout=300, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"systemctl {' '.join(args)}: {result.stderr or result.stdout}")
    return result.stdout.strip()


def unit_property(name: str, prop: str) -> str:
    return systemctl("show", "-P", prop, name)


def cgroup_of(pid: int) -> Path:
    """The cgroup v2 directory of a process."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        if line.startswith("0::"):
            return CGROUP_ROOT / line[3:].lstrip("/")
    raise AssertionError(f"process {pid} has no cgroup v2 entry")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Node:
    """pycrio as a systemd unit, and a CRI client to it."""

    driver: str
    work: Path
    run_dir: Path
    client: CriClient
    pods: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.run_dir / "pycrio.sock"

    def main_pid(self) -> int:
        return int(unit_property(UNIT, "MainPID"))

    def restart(self) -> None:
        self.client.close()
        systemctl("restart", UNIT)  # Type=notify: returns once pycrio has sent READY=1
        self.client = connect(self.socket, wait=60)

    def pod_parent(self, uid: str) -> str:
        """The cgroup parent the kubelet sends for a Burstable pod with this driver."""
        if self.driver == "systemd":
            return f"kubepods-burstable-pod{uid.replace('-', '_')}.slice"
        return f"/kubepods/burstable/pod{uid}"

    def run_pod(self, name: str, **linux: Any) -> tuple[str, pb.PodSandboxConfig]:
        config = pod_config(f"{name}-{uuid.uuid4().hex[:6]}", self.work / "logs", **linux)
        response = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
        self.pods.append(response.pod_sandbox_id)
        return response.pod_sandbox_id, config

    def run_container(
        self, pod_id: str, pod: pb.PodSandboxConfig, name: str, command: list[str], **resources: Any
    ) -> str:
        config = container_config(
            name, command, linux=pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(**resources))
        )
        created = self.client.runtime.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        )
        self.client.runtime.StartContainer(pb.StartContainerRequest(container_id=created.container_id))
        return str(created.container_id)

    def container_info(self, container_id: str) -> dict[str, Any]:
        response = self.client.runtime.ContainerStatus(
            pb.ContainerStatusRequest(container_id=container_id, verbose=True)
        )
        info: dict[str, Any] = json.loads(response.info["info"])
        return info

    def infra_pid(self, pod_id: str) -> int:
        response = self.client.runtime.PodSandboxStatus(
            pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True)
        )
        return int(json.loads(response.info["info"])["pid"])

    def conmon_pid(self, container_id: str) -> int:
        return int((self.run_dir / "conmon" / container_id / "conmon.pid").read_text())

    def remove_pod(self, pod_id: str) -> None:
        self.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        self.pods.remove(pod_id)


def _config(driver: str, work: Path, run_dir: Path, cni: Path, extra: str = "") -> str:
    return extra + "\n".join(
        [
            "[log]",
            'level = "debug"',
            "[grpc]",
            f'listen = "unix://{run_dir}/pycrio.sock"',
            "[runtime]",
            f'root = "{work / "root"}"',
            f'run_dir = "{run_dir}"',
            f'cgroup_driver = "{driver}"',
            "[network]",
            f'cni_conf_dir = "{cni}"',
            "[stats]",
            "period = 0.0",
            "",
        ]
    )


def _install_unit() -> None:
    UNIT_FILE.write_text((REPO / "contrib" / "systemd" / UNIT).read_text())
    DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    # The source tree is a read-only share: run it in place, with the guest's baked dependencies.
    DROP_IN.write_text(
        "[Service]\n"
        f"Environment=PYTHONPATH={REPO / 'src'}:/opt/pycrio/lib PYTHONPYCACHEPREFIX=/var/cache/pycrio-pyc\n"
        "ExecStart=\n"
        f"ExecStart=/usr/bin/python3 -m app.main --config {CONFIG}\n"
        "WatchdogSec=30s\n"
    )
    systemctl("daemon-reload")


@pytest.fixture(scope="module", params=["systemd", "cgroupfs"])
def node(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    driver: str = request.param
    yield from started_node(driver, tmp_path_factory.mktemp(f"node-{driver}"))


def started_node(driver: str, work: Path, extra_config: str = "", name: str = "") -> Iterator[Node]:
    """pycrio started as the unit with this cgroup driver (and TOML tables of `extra_config`), until the
    generator is closed; `name` keeps its run directory apart from other modules' nodes."""
    run_dir = Path(f"/run/pycrio-vm-{name or driver}")
    (work / "logs").mkdir()
    seed_busybox_image(work / "root", work)
    cni = write_cni_conf(work / "net.d", work / "ipam")
    CONFIG.parent.mkdir(parents=True, exist_ok=True)
    CONFIG.write_text(_config(driver, work, run_dir, cni, extra_config))
    _install_unit()
    systemctl("start", UNIT)
    node = Node(driver, work, run_dir, connect(run_dir / "pycrio.sock", wait=60))
    try:
        yield node
    finally:
        for pod_id in list(node.pods):
            with contextlib.suppress(grpc.RpcError):
                node.remove_pod(pod_id)
        node.client.close()
        systemctl("stop", UNIT)

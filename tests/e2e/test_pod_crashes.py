"""A daemon killed during CNI ADD, and a kubelet that gives up on RunPodSandbox and retries.

A slow plugin (`pcpod-slow`, a small Python script placed after bridge in the test conflist) makes ADD take
as long as the test wants, so the crash and the retry hit the middle of the network setup.
"""

import json
import os
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.pod_host import (
    HostTestNetwork,
    cgroup_leftovers,
    cleanup,
    cleanup_run_dir,
    leftovers,
    make_test_network,
    netns_mounts,
    remove_cgroups,
)

SLOW_PLUGIN = """#!{python}
import json, os, sys, time
conf = json.load(sys.stdin)
if os.environ["CNI_COMMAND"] == "ADD":
    with open({marker!r}, "w") as handle:
        handle.write(str(os.getpid()))
    time.sleep(float(conf.get("sleep", 0)))
    print(json.dumps(conf.get("prevResult", {{}})))
"""


@dataclass
class SlowSetup:
    daemon: Daemon
    network: HostTestNetwork
    marker: Path
    cgroup_parent: str

    def leftovers(self) -> list[str]:
        run_dir = self.daemon.workdir / "run"
        found = leftovers(self.network) + netns_mounts(run_dir) + cgroup_leftovers(self.cgroup_parent)
        if (run_dir / "pods").exists():
            found += [str(p) for p in (run_dir / "pods").iterdir()]
        return found


def _slow_setup(root: Path, sleep: float) -> SlowSetup:
    network = make_test_network(root)
    conf = network.conf_dir / "10-pcpod.conflist"
    data = json.loads(conf.read_text())
    data["plugins"].insert(1, {"type": "pcpod-slow", "sleep": sleep})
    conf.write_text(json.dumps(data))
    bin_dir = root / "bin"
    bin_dir.mkdir()
    marker = root / "slow-started"
    plugin = bin_dir / "pcpod-slow"
    plugin.write_text(SLOW_PLUGIN.format(python=sys.executable, marker=str(marker)))
    plugin.chmod(0o755)
    cgroup_parent = f"/pycrio-test-pods/crash-{secrets.token_hex(4)}"
    daemon = Daemon(
        root / "pycrio",
        [
            f'network.cni_conf_dir="{network.conf_dir}"',
            f'network.cni_plugin_dirs=["{bin_dir}", "/usr/lib/cni"]',
            f'pods.default_cgroup_parent="{cgroup_parent}"',
        ],
    )
    return SlowSetup(daemon, network, marker, cgroup_parent)


@pytest.fixture
def slow(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[SlowSetup]:
    setup = _slow_setup(tmp_path, request.param)
    setup.daemon.start()
    try:
        yield setup
    finally:
        setup.daemon.stop()
        cleanup_run_dir(setup.daemon.workdir / "run")
        cleanup(setup.network)
        remove_cgroups(setup.cgroup_parent)


def _config(name: str) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="e2e-crash", attempt=0)
    )


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists() or not path.read_text():
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


@pytest.mark.parametrize("slow", [60.0], indirect=True)
def test_a_crash_during_cni_add_is_undone_on_restart(slow: SlowSetup) -> None:
    runtime = slow.daemon.client.runtime
    failures: list[grpc.RpcError] = []

    def run() -> None:
        try:
            runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=_config("crashed")))
        except grpc.RpcError as err:
            failures.append(err)

    caller = threading.Thread(target=run)
    caller.start()
    _wait_for(slow.marker)
    # The bridge plugin has run: a veth and an address exist now.
    assert any(item.startswith("veth") for item in leftovers(slow.network))
    slow.daemon.stop(signal.SIGKILL)
    os.kill(int(slow.marker.read_text()), signal.SIGKILL)  # the orphaned plugin
    caller.join(30)
    assert len(failures) == 1  # the call never succeeded
    slow.marker.unlink()
    conf = slow.network.conf_dir / "10-pcpod.conflist"
    conf.write_text(conf.read_text().replace('"sleep": 60.0', '"sleep": 0'))

    slow.daemon.start()
    assert list(slow.daemon.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items) == []
    assert slow.leftovers() == []
    # The name is free again.
    slow.network.sandbox_ids.add(
        slow.daemon.client.runtime.RunPodSandbox(
            pb.RunPodSandboxRequest(config=_config("crashed")), timeout=120
        ).pod_sandbox_id
    )


@pytest.mark.parametrize("slow", [3.0], indirect=True)
def test_a_retry_after_the_kubelet_gave_up_gets_the_same_pod(slow: SlowSetup) -> None:
    runtime = slow.daemon.client.runtime
    with pytest.raises(grpc.RpcError) as first:
        runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=_config("retried")), timeout=1.0)
    assert first.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    retried = runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=_config("retried")), timeout=60)
    slow.network.sandbox_ids.add(retried.pod_sandbox_id)
    (listed,) = runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert listed.id == retried.pod_sandbox_id
    assert listed.state == pb.SANDBOX_READY
    with pytest.raises(grpc.RpcError) as third:
        runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=_config("retried")), timeout=60)
    assert third.value.code() == grpc.StatusCode.ALREADY_EXISTS
    runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=listed.id))
    runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=listed.id))
    assert slow.leftovers() == []

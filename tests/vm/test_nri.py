"""NRI on a systemd + cgroup v2 node: pycrio runs as the systemd unit with the systemd cgroup driver and
NRI on; the tests' own plugin (tests/nri_plugin.py) adjusts a container, and the adjustment is in the
container's environment, in its systemd scope's properties and in its cgroup v2 files. A plugin's change to
an UpdateContainerResources lands through runc's systemd driver too, plugins hear UpdatePodSandboxResources,
and a container that exits on its own is reported stopped by the exit watcher."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.nri.generated import nri_pb2 as nri
from tests.e2e.containers_support import wait_until
from tests.nri_plugin import TestPlugin
from tests.vm.conftest import MIB, Node, cgroup_of, started_node, unit_property

NRI_SOCKET = Path("/run/pycrio-vm-nri/nri/nri.sock")
SLEEP = ["sh", "-c", "exec sleep 3600"]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    extra = f'[nri]\nenable = true\nsocket_path = "{NRI_SOCKET}"\nplugin_dir = ""\nplugin_config_dir = ""\n'
    yield from started_node("systemd", tmp_path_factory.mktemp("node-nri"), extra, name="nri")


def _plugin(name: str, **fields: object) -> TestPlugin:
    plugin = TestPlugin(name, "10", **fields)  # type: ignore[arg-type]
    plugin.connect(str(NRI_SOCKET))
    assert plugin.synchronized.wait(60), "the daemon synchronized the plugin"
    return plugin


def _adjustment() -> nri.ContainerAdjustment:
    adjust = nri.ContainerAdjustment(env=[nri.KeyValue(key="NRI_ADDED", value="yes")])
    resources = adjust.linux.resources
    resources.memory.limit.value = 64 * MIB
    resources.pids.limit = 77
    resources.unified["memory.high"] = str(40 * MIB)
    return adjust


def _pod(node: Node, name: str) -> tuple[str, pb.PodSandboxConfig]:
    return node.run_pod(name, cgroup_parent=node.pod_parent(str(uuid.uuid4())))


def _read(directory: Path, name: str) -> str:
    return (directory / name).read_text().strip()


def test_an_adjustment_lands_in_the_scope_and_the_cgroup_v2_files(node: Node) -> None:
    plugin = _plugin("adjuster", adjustment=_adjustment(), raise_memory_to=160 * MIB)
    try:
        pod_id, pod = _pod(node, "nri")
        container_id = node.run_container(pod_id, pod, "adjusted", SLEEP)
        exec_env = node.client.runtime.ExecSync(
            pb.ExecSyncRequest(container_id=container_id, cmd=["sh", "-c", "echo $NRI_ADDED"], timeout=60)
        )
        assert exec_env.stdout == b"yes\n", exec_env.stderr
        directory = cgroup_of(int(node.container_info(container_id)["pid"]))
        assert directory.name == f"pycrio-{container_id}.scope"
        assert _read(directory, "memory.max") == str(64 * MIB)
        assert _read(directory, "memory.high") == str(40 * MIB)
        assert _read(directory, "pids.max") == "77"
        scope = f"pycrio-{container_id}.scope"
        assert unit_property(scope, "MemoryMax") == str(64 * MIB)
        assert unit_property(scope, "TasksMax") == "77"

        # The plugin raises what UpdateContainerResources asks for; runc's systemd driver applies it.
        node.client.runtime.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(
                container_id=container_id, linux=pb.LinuxContainerResources(memory_limit_in_bytes=96 * MIB)
            )
        )
        assert _read(directory, "memory.max") == str(160 * MIB)
        assert unit_property(scope, "MemoryMax") == str(160 * MIB)

        # UpdatePodSandboxResources: plugins hear it, and the pod's slice gets the limit.
        node.client.runtime.UpdatePodSandboxResources(
            pb.UpdatePodSandboxResourcesRequest(
                pod_sandbox_id=pod_id,
                overhead=pb.LinuxContainerResources(memory_limit_in_bytes=16 * MIB),
                resources=pb.LinuxContainerResources(memory_limit_in_bytes=256 * MIB),
            )
        )
        assert unit_property(pod.linux.cgroup_parent, "MemoryMax") == str(272 * MIB)
        resized = plugin.wait_for("UpdatePodSandbox")
        assert isinstance(resized, nri.UpdatePodSandboxRequest)
        assert resized.linux_resources.memory.limit.value == 256 * MIB

        node.remove_pod(pod_id)
        wait_until(lambda: "RemovePodSandbox" in plugin.names() or None, what="RemovePodSandbox heard")
        assert [n for n in plugin.names() if n not in ("Configure", "Synchronize")] == [
            "RunPodSandbox", "CreateContainer", "ValidateContainerAdjustment", "PostCreateContainer",
            "StartContainer", "PostStartContainer", "UpdateContainer", "PostUpdateContainer",
            "UpdatePodSandbox", "PostUpdatePodSandbox", "StopContainer", "StopPodSandbox", "RemoveContainer",
            "RemovePodSandbox",
        ]  # fmt: skip
        ran = plugin.wait_for("RunPodSandbox")
        assert isinstance(ran, nri.RunPodSandboxRequest)
        assert ran.pod.linux.cgroups_path, "the pod is shown its cgroup"
    finally:
        plugin.close()


def test_a_container_exiting_on_its_own_is_reported_stopped(node: Node) -> None:
    mask = (1 << (nri.CREATE_CONTAINER - 1)) | (1 << (nri.STOP_CONTAINER - 1))
    plugin = _plugin("watcher", events_mask=mask)
    try:
        pod_id, pod = _pod(node, "exits")
        container_id = node.run_container(pod_id, pod, "quits", ["sh", "-c", "exit 3"])
        stopped = plugin.wait_for("StopContainer", timeout=120)
        assert isinstance(stopped, nri.StopContainerRequest)
        assert stopped.container.id == container_id and stopped.container.exit_code == 3
        node.remove_pod(pod_id)
        assert plugin.names().count("StopContainer") == 1
    finally:
        plugin.close()

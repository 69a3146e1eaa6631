"""NRI through the real daemon, runc and conmon: a plugin written in the tests (tests/nri_plugin.py) connects
to the daemon's NRI socket, hears every pod and container event, and adjusts a container; the container
sees the adjustments. Updates from a plugin land through runc update. Pods use the host's network."""

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.nri.generated import nri_pb2 as nri
from tests.contract.container_host import TEST_CGROUP, marker, remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    force_delete_runc_containers,
    pod_config,
    remove_pods,
    seed_busybox_image,
    status,
    wait_until,
)
from tests.e2e.daemon import Daemon
from tests.nri_plugin import TestPlugin

MiB = 1024 * 1024


@dataclass
class Env:
    daemon: Daemon
    client: CriClient
    work: Path
    socket: Path
    pods: list[str]

    def pod(self, name: str) -> tuple[str, pb.PodSandboxConfig]:
        config = pod_config(
            f"{name}-{uuid.uuid4().hex[:6]}",
            self.work / "logs",
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(network=pb.NODE)
            ),
        )
        pod_id = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, config

    def create(self, pod: tuple[str, pb.PodSandboxConfig], name: str) -> str:
        config = container_config(name, ["/bin/sleep", marker(40)])
        request = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
        container_id: str = self.client.runtime.CreateContainer(request).container_id
        return container_id

    def exec(self, container_id: str, script: str) -> str:
        response = self.client.runtime.ExecSync(
            pb.ExecSyncRequest(container_id=container_id, cmd=["/bin/sh", "-c", script], timeout=30)
        )
        assert response.exit_code == 0, response.stderr
        return str(response.stdout.decode())

    def plugin(self, name: str, index: str, **fields: object) -> TestPlugin:
        plugin = TestPlugin(name, index, **fields)  # type: ignore[arg-type]
        plugin.connect(str(self.socket))
        assert plugin.synchronized.wait(30), "the daemon synchronized the plugin"
        return plugin


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pcnri")
    seed_busybox_image(work / "pycrio" / "root", work)
    (work / "net.d").mkdir()
    (work / "logs").mkdir()
    parent = f"/{TEST_CGROUP}/nri-{uuid.uuid4().hex[:6]}"
    socket_path = work / "nri" / "nri.sock"
    daemon = Daemon(
        work / "pycrio",
        [
            f'network.cni_conf_dir="{work / "net.d"}"',
            f'pods.default_cgroup_parent="{parent}"',
            f'runtime.runtimes.runc.root="{work / "runc"}"',
            "nri.enable=true",
            f'nri.socket_path="{socket_path}"',
            # Healthy plugins (threads of this loaded test process) must never miss it; the hanging one
            # still hits it.
            "nri.plugin_request_timeout=10.0",
            f'nri.plugin_dir="{work / "nri-plugins"}"',
            f'nri.plugin_config_dir="{work / "nri-conf.d"}"',
        ],
    ).start()
    env = Env(daemon, daemon.client, work, socket_path, [])
    try:
        yield env
    finally:
        remove_pods(env.client, env.pods)
        daemon.stop()
        listed = force_delete_runc_containers(work / "runc")
        left = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not listed, f"runc containers left: {listed}"
        assert not left, f"cgroups left: {left}"


def _adjustment(share: Path) -> nri.ContainerAdjustment:
    adjust = nri.ContainerAdjustment(
        env=[nri.KeyValue(key="NRI_ADDED", value="yes")],
        mounts=[nri.Mount(destination="/opt/nri", type="bind", source=str(share), options=["rbind", "ro"])],
        rlimits=[nri.POSIXRlimit(type="RLIMIT_NOFILE", hard=1234, soft=1234)],
    )
    adjust.annotations["nri.example.com/adjusted"] = "yes"
    adjust.linux.devices.add(path="/dev/nritest0", type="c", major=1, minor=3).file_mode.value = 0o666
    adjust.linux.resources.memory.limit.value = 64 * MiB
    return adjust


def test_a_plugin_adjusts_a_container_and_hears_every_event(env: Env) -> None:
    share = env.work / "share"
    share.mkdir()
    (share / "hello").write_text("from the NRI mount\n")
    plugin = env.plugin("adjuster", "10", adjustment=_adjustment(share))
    try:
        pod = env.pod("nri")
        container_id = env.create(pod, "adjusted")
        env.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        assert env.exec(container_id, "echo $NRI_ADDED").strip() == "yes"
        assert env.exec(container_id, "cat /opt/nri/hello").strip() == "from the NRI mount"
        assert env.exec(container_id, "touch /opt/nri/x 2>/dev/null || echo refused").strip() == "refused"
        assert (
            env.exec(container_id, "stat -c '%F %t:%T' /dev/nritest0").strip() == "character special file 1:3"
        )
        assert env.exec(container_id, "ulimit -n").strip() == "1234"
        limit = env.exec(container_id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes").strip()
        assert int(limit) == 64 * MiB
        spec = json.loads(status(env.client, container_id, verbose=True).info["info"])["runtimeSpec"]
        assert spec["annotations"]["nri.example.com/adjusted"] == "yes"

        # UpdateContainerResources: plugins hear it; an unsolicited update goes through runc update too.
        env.client.runtime.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(
                container_id=container_id, linux=pb.LinuxContainerResources(memory_limit_in_bytes=96 * MiB)
            )
        )
        assert int(env.exec(container_id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")) == 96 * MiB
        update = nri.ContainerUpdate(container_id=container_id)
        update.linux.resources.memory.limit.value = 128 * MiB
        assert not plugin.update_containers([update]).failed
        assert int(env.exec(container_id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")) == 128 * MiB

        env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
        env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))
        env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
        env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
        wait_until(lambda: "RemovePodSandbox" in plugin.names() or None, what="RemovePodSandbox heard")
        assert [n for n in plugin.names() if n not in ("Configure", "Synchronize")] == [
            "RunPodSandbox", "CreateContainer", "ValidateContainerAdjustment", "PostCreateContainer",
            "StartContainer", "PostStartContainer", "UpdateContainer", "PostUpdateContainer", "StopContainer",
            "RemoveContainer", "StopPodSandbox", "RemovePodSandbox",
        ]  # fmt: skip
        created = plugin.wait_for("CreateContainer")
        assert isinstance(created, nri.CreateContainerRequest)
        assert created.pod.id == pod[0] and created.container.name == "adjusted"
    finally:
        plugin.close()


def test_two_plugins_adjusting_the_same_env_fail_the_create_naming_both(env: Env) -> None:
    first = env.plugin(
        "first", "10", adjustment=nri.ContainerAdjustment(env=[nri.KeyValue(key="X", value="1")])
    )
    second = env.plugin(
        "second", "20", adjustment=nri.ContainerAdjustment(env=[nri.KeyValue(key="X", value="2")])
    )
    try:
        pod = env.pod("conflict")
        with pytest.raises(grpc.RpcError) as raised:
            env.create(pod, "contested")
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "10-first and 20-second both adjust env 'X'" in str(raised.value.details())
        listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
        assert [c for c in listed if c.pod_sandbox_id == pod[0]] == []
    finally:
        first.close()
        second.close()


def test_a_hanging_plugin_hits_the_timeout_and_the_daemon_goes_on(env: Env) -> None:
    sleeper = env.plugin("sleeper", "10", hang_on="CreateContainer")
    try:
        pod = env.pod("hang")
        with pytest.raises(grpc.RpcError) as raised:
            env.create(pod, "waits")
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "did not answer CreateContainer" in str(raised.value.details())
        container_id = env.create(pod, "after")  # the plugin was disconnected
        assert container_id
    finally:
        sleeper.close()


def test_a_container_that_exits_on_its_own_is_reported_stopped_to_a_subscribed_plugin(env: Env) -> None:
    # containerd/nri's stub subscribes with upstream's bits (1 << (event - 1)): here Create and Stop only.
    mask = (1 << (nri.CREATE_CONTAINER - 1)) | (1 << (nri.STOP_CONTAINER - 1))
    plugin = env.plugin("watcher", "10", events_mask=mask)
    try:
        pod = env.pod("exits")
        config = container_config("quits", ["/bin/sh", "-c", "exit 3"])
        request = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
        container_id = env.client.runtime.CreateContainer(request).container_id
        env.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        stopped = plugin.wait_for("StopContainer")  # no StopContainer or RemoveContainer was asked for
        assert isinstance(stopped, nri.StopContainerRequest)
        assert stopped.container.id == container_id
        assert stopped.container.state == nri.CONTAINER_STOPPED and stopped.container.exit_code == 3
        assert [n for n in plugin.names() if n not in ("Configure", "Synchronize")] == [
            "CreateContainer",
            "StopContainer",
        ]
    finally:
        plugin.close()


def test_a_plugin_changes_the_resources_of_an_update_it_hears(env: Env) -> None:
    plugin = env.plugin("resizer", "10", raise_memory_to=160 * MiB)
    try:
        pod = env.pod("resize")
        container_id = env.create(pod, "resized")
        env.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        env.client.runtime.UpdateContainerResources(
            pb.UpdateContainerResourcesRequest(
                container_id=container_id, linux=pb.LinuxContainerResources(memory_limit_in_bytes=96 * MiB)
            )
        )
        assert int(env.exec(container_id, "cat /sys/fs/cgroup/memory/memory.limit_in_bytes")) == 160 * MiB
        updated = plugin.wait_for("UpdateContainer")
        assert isinstance(updated, nri.UpdateContainerRequest)
        assert updated.linux_resources.memory.limit.value == 96 * MiB, "the plugin was shown the request"
        listed = status(env.client, container_id).status.resources.linux
        assert listed.memory_limit_in_bytes == 160 * MiB
    finally:
        plugin.close()


def test_plugins_that_heard_a_pod_run_hear_it_removed_when_a_later_plugin_refuses_it(env: Env) -> None:
    first = env.plugin("first", "10")
    refuser = env.plugin("refuser", "20", fail_on="RunPodSandbox")
    try:
        with pytest.raises(grpc.RpcError) as raised:
            env.pod("refused")
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "20-refuser" in str(raised.value.details())
        assert [n for n in first.names() if n.endswith("PodSandbox")] == ["RunPodSandbox", "RemovePodSandbox"]
        ran, removed = (request for name, request in first.events if name.endswith("PodSandbox"))
        assert isinstance(ran, nri.RunPodSandboxRequest) and isinstance(removed, nri.RemovePodSandboxRequest)
        assert removed.pod.id == ran.pod.id
        assert [n for n in refuser.names() if n.endswith("PodSandbox")] == ["RunPodSandbox"]
        listed = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
        assert ran.pod.id not in [p.id for p in listed]
    finally:
        first.close()
        refuser.close()


def test_a_validator_sees_who_adjusted_what_and_its_rejection_fails_the_create(env: Env) -> None:
    adjust = nri.ContainerAdjustment(env=[nri.KeyValue(key="CHECKED", value="1")])
    adjust.linux.resources.memory.limit.value = 48 * MiB
    adjuster = env.plugin("adjuster", "10", adjustment=adjust)
    validator = env.plugin(
        "validator", "20", events_mask=1 << (nri.VALIDATE_CONTAINER_ADJUSTMENT - 1), reject_with="not here"
    )
    try:
        pod = env.pod("validated")
        with pytest.raises(grpc.RpcError) as raised:
            env.create(pod, "refused")
        assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "20-validator rejected the adjustment of container 'refused': not here" in str(
            raised.value.details()
        )
        asked = validator.wait_for("ValidateContainerAdjustment")
        assert isinstance(asked, nri.ValidateContainerAdjustmentRequest)
        assert [(e.key, e.value) for e in asked.adjust.env] == [("CHECKED", "1")]
        assert "CHECKED=1" not in asked.container.env, "the container as it was before the plugins"
        owners = asked.owners.owners[asked.container.id]
        assert owners.compound[nri.Env].owners["CHECKED"] == "10-adjuster"
        assert owners.simple[nri.MemLimit] == "10-adjuster"
        assert [(p.index, p.name) for p in asked.plugins] == [("10", "adjuster"), ("20", "validator")]
        listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
        assert [c for c in listed if c.pod_sandbox_id == pod[0]] == []

        validator.reject_with = ""
        assert env.create(pod, "accepted")
    finally:
        adjuster.close()
        validator.close()


def test_plugins_hear_update_pod_sandbox_resources_and_may_refuse_it(env: Env) -> None:
    plugin = env.plugin("podsizer", "10")
    try:
        pod = env.pod("podsize")

        def resize(memory: int) -> None:
            env.client.runtime.UpdatePodSandboxResources(
                pb.UpdatePodSandboxResourcesRequest(
                    pod_sandbox_id=pod[0],
                    overhead=pb.LinuxContainerResources(memory_limit_in_bytes=16 * MiB),
                    resources=pb.LinuxContainerResources(memory_limit_in_bytes=memory, cpu_shares=512),
                )
            )

        resize(256 * MiB)
        assert [n for n in plugin.names() if "Update" in n] == ["UpdatePodSandbox", "PostUpdatePodSandbox"]
        update = plugin.wait_for("UpdatePodSandbox")
        assert isinstance(update, nri.UpdatePodSandboxRequest) and update.pod.id == pod[0]
        assert update.linux_resources.memory.limit.value == 256 * MiB
        assert update.linux_resources.cpu.shares.value == 512
        assert update.overhead_linux_resources.memory.limit.value == 16 * MiB
    finally:
        plugin.close()
    refuser = env.plugin("podrefuser", "20", fail_on="UpdatePodSandbox")
    try:
        with pytest.raises(grpc.RpcError) as raised:
            resize(512 * MiB)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "20-podrefuser failed UpdatePodSandbox" in str(raised.value.details())
        assert "PostUpdatePodSandbox" not in refuser.names()
    finally:
        refuser.close()


def test_after_a_daemon_restart_what_was_stopped_is_not_reported_stopped_again(env: Env) -> None:
    # Last in the module: it restarts the daemon.
    before = env.plugin("before", "10")
    try:
        pod = env.pod("restart")
        container_id = env.create(pod, "stopped")
        env.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
        assert [n for n in before.names() if n.startswith("Stop")] == ["StopContainer", "StopPodSandbox"]
    finally:
        before.close()
    env.daemon.stop()
    env.daemon.start()
    env.client = env.daemon.client
    after = env.plugin("after", "10")
    try:
        synced = after.wait_for("Synchronize")
        assert isinstance(synced, nri.SynchronizeRequest)
        shown = {c.id: c.state for c in synced.containers}
        assert shown[container_id] == nri.CONTAINER_STOPPED
        env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
        env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
        wait_until(lambda: "RemovePodSandbox" in after.names() or None, what="RemovePodSandbox heard")
        assert [n for n in after.names() if n not in ("Configure", "Synchronize")] == [
            "RemoveContainer",
            "RemovePodSandbox",
        ]
    finally:
        after.close()

"""A node reboot under pycrio, against the real daemon, runc, conmon and CNI (bridge + host-local + portmap).

Pods and containers run; then everything a reboot takes goes (tests/reboot_host.py): the daemon, conmons,
infra processes and containers are killed, the run dir (tmpfs on a node, runc's state root in it) is
emptied, the namespaces, mounts, links, rules and cgroups are gone. The state dir, the image storage,
host-local's files and the log dirs stay. The records are made to say they come from another boot, and
every pid they (and, where the run dir is on disk, its pid files) recorded now names a live decoy process.
pycrio starts again and the test does what the kubelet does after a reboot: list, ask for statuses, stop
the old pods, run new ones, remove the old ones. Nothing may answer INTERNAL, no old container may read
RUNNING, no decoy may be signalled, every old address must be released (a CNI DEL with a network namespace
that no longer exists, as the CNI spec allows), and nothing of the old pods may be left.
"""

import secrets
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from bench.cleanup import kill_cgroup_tree, unmount_under
from tests.contract.container_host import TEST_CGROUP
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    force_delete_runc_containers,
    run_container,
    seed_busybox_image,
    wait_exited,
)
from tests.e2e.daemon import Daemon
from tests.pod_host import (
    HostTestNetwork,
    cgroup_leftovers,
    cleanup,
    cleanup_run_dir,
    free_port,
    leftovers,
    make_test_network,
    netns_mounts,
)
from tests.reboot_host import Decoys, pretend_an_earlier_boot, simulate_reboot

pytestmark = pytest.mark.root

T = TypeVar("T")
NAMESPACE = "e2e-reboot"


@dataclass
class Node:
    daemon: Daemon
    network: HostTestNetwork
    cgroup_parent: str
    logs: Path
    decoys: Decoys

    @property
    def cri(self) -> CriClient:
        return self.daemon.client

    @property
    def run_dir(self) -> Path:
        return self.daemon.workdir / "run"

    def reboot(self, run_dir_on_disk: bool = False) -> None:
        simulate_reboot(self.daemon, self.cgroup_parent, self.network, run_dir_on_disk)
        pretend_an_earlier_boot(self.daemon, self.decoys)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    network = make_test_network(tmp_path)
    work = tmp_path / "pycrio"
    seed_busybox_image(work / "root", tmp_path)
    parent = f"/{TEST_CGROUP}/reboot-{secrets.token_hex(4)}"
    daemon = Daemon(
        work, [f'network.cni_conf_dir="{network.conf_dir}"', f'pods.default_cgroup_parent="{parent}"']
    ).start()
    decoys = Decoys(tmp_path / "decoys")
    try:
        yield Node(daemon, network, parent, tmp_path / "logs", decoys)
    finally:
        decoys.stop()
        daemon.stop()
        force_delete_runc_containers(work / "run" / "runc")
        cleanup_run_dir(work / "run")
        kill_cgroup_tree(parent)
        unmount_under(work)
        cleanup(network)


def _call(method: Callable[[Any], T], request: Any) -> T:
    """The RPC's answer; an INTERNAL or UNKNOWN failure is the test's failure, with the daemon's message."""
    try:
        return method(request)
    except grpc.RpcError as err:
        assert err.code() not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), err.details()
        raise


def _pod(node: Node, name: str, attempt: int = 0, host_port: int = 0) -> tuple[str, pb.PodSandboxConfig]:
    uid = f"uid-{name}"
    config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=NAMESPACE, attempt=attempt),
        hostname=name,
        log_directory=str(node.logs / f"{NAMESPACE}_{name}_{uid}"),
        port_mappings=[pb.PortMapping(container_port=8080, host_port=host_port)] if host_port else [],
    )
    reply = _call(node.cri.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=config))
    node.network.sandbox_ids.add(reply.pod_sandbox_id)
    return reply.pod_sandbox_id, config


def _pod_status(node: Node, pod_id: str) -> pb.PodSandboxStatus:
    request = pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id, verbose=True)
    reply: pb.PodSandboxStatusResponse = _call(node.cri.runtime.PodSandboxStatus, request)
    return reply.status


def _status(node: Node, container_id: str) -> pb.ContainerStatus:
    request = pb.ContainerStatusRequest(container_id=container_id, verbose=True)
    reply: pb.ContainerStatusResponse = _call(node.cri.runtime.ContainerStatus, request)
    return reply.status


def _record_ids(node: Node, kind: str) -> set[str]:
    directory = node.daemon.workdir / "root" / "state" / kind
    return {p.name.removesuffix(".json") for p in directory.glob("*.json")}


def _ipam(node: Node) -> set[str]:
    return {item.removeprefix("ipam ") for item in leftovers(node.network) if item.startswith("ipam ")}


@pytest.mark.parametrize("run_dir_on_disk", [False, True], ids=["run-dir-tmpfs", "run-dir-on-disk"])
def test_after_a_reboot_the_kubelet_replaces_the_old_pods_and_nothing_of_them_is_left(
    node: Node, run_dir_on_disk: bool
) -> None:
    runtime = node.cri.runtime
    web, web_config = _pod(node, "web", host_port=free_port())
    server = run_container(node.cri, web, web_config, container_config("server", ["sleep", "600"]))
    done = run_container(node.cri, web, web_config, container_config("done", ["true"]))
    wait_exited(node.cri, done)
    create = pb.CreateContainerRequest(
        pod_sandbox_id=web, config=container_config("idle", ["sleep", "600"]), sandbox_config=web_config
    )
    idle = runtime.CreateContainer(create).container_id
    db, db_config = _pod(node, "db")
    db_server = run_container(node.cri, db, db_config, container_config("server", ["sleep", "600"]))
    old_pods, old_containers = {web, db}, {server, done, idle, db_server}
    old_ips = {_pod_status(node, web).network.ip, _pod_status(node, db).network.ip}
    assert _ipam(node) == old_ips
    old_log_dirs = [Path(web_config.log_directory), Path(db_config.log_directory)]
    assert all(d.is_dir() for d in old_log_dirs)

    node.reboot(run_dir_on_disk)
    assert _ipam(node) == old_ips  # host-local's allocations survive the reboot
    node.daemon.start()
    runtime = node.cri.runtime
    # Released at start-up, before the kubelet asks: its new pods may need them first.
    assert _ipam(node) == set()

    # The kubelet's first look: every old pod and container is listed, none is READY or RUNNING.
    pods = _call(runtime.ListPodSandbox, pb.ListPodSandboxRequest()).items
    assert {p.id: p.state for p in pods} == dict.fromkeys(old_pods, pb.SANDBOX_NOTREADY)
    containers = _call(runtime.ListContainers, pb.ListContainersRequest()).containers
    assert {c.id: c.state for c in containers} == dict.fromkeys(old_containers, pb.CONTAINER_EXITED)
    for container_id in old_containers - {done}:
        # As containerd reports a container whose task is gone: the exit code is unknown.
        reply = _status(node, container_id)
        assert (reply.state, reply.exit_code, reply.reason) == (pb.CONTAINER_EXITED, 255, "Unknown"), reply
        assert "rebooted" in reply.message
        assert reply.finished_at >= reply.started_at > 0
    finished = _status(node, done)  # its exit was known before the reboot, and stays
    assert (finished.state, finished.exit_code, finished.reason) == (pb.CONTAINER_EXITED, 0, "Completed")
    for pod_id in old_pods:
        assert _pod_status(node, pod_id).state == pb.SANDBOX_NOTREADY
    # The kubelet's stats polls answer too (nothing of the old pods runs or has a cgroup any more).
    _call(runtime.ListPodSandboxStats, pb.ListPodSandboxStatsRequest())
    _call(runtime.ListContainerStats, pb.ListContainerStatsRequest())
    for pod_id in old_pods:
        _call(runtime.PodSandboxStats, pb.PodSandboxStatsRequest(pod_sandbox_id=pod_id))
    for container_id in old_containers:
        _call(runtime.ContainerStats, pb.ContainerStatsRequest(container_id=container_id))
    # A container made before the reboot can never start: a clear refusal, not INTERNAL.
    with pytest.raises(grpc.RpcError) as refused:
        _call(runtime.StartContainer, pb.StartContainerRequest(container_id=idle))
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    # Nor can a container be made in an old pod: its namespaces went with the boot.
    late = pb.CreateContainerRequest(
        pod_sandbox_id=web, config=container_config("late", ["sleep", "600"]), sandbox_config=web_config
    )
    with pytest.raises(grpc.RpcError) as refused:
        _call(runtime.CreateContainer, late)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()

    # The kubelet kills the old pods, starts new ones, and collects the old ones' garbage.
    for pod_id in old_pods:
        _call(runtime.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    new_web, new_web_config = _pod(node, "web", attempt=1)
    again = container_config("server", ["sleep", "600"])
    again.metadata.attempt = 1  # the kubelet counts the old container as the first attempt
    new_server = run_container(node.cri, new_web, new_web_config, again)
    new_db, _ = _pod(node, "db", attempt=1)
    new_ips = {_pod_status(node, new_web).network.ip, _pod_status(node, new_db).network.ip}
    assert all(new_ips) and _ipam(node) == new_ips
    for container_id in old_containers:
        _call(runtime.RemoveContainer, pb.RemoveContainerRequest(container_id=container_id))
    for pod_id in old_pods:
        _call(runtime.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))

    assert node.decoys.alive()  # no pid of the earlier boot was signalled
    assert {p.id for p in runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items} == {new_web, new_db}
    assert {c.id for c in runtime.ListContainers(pb.ListContainersRequest()).containers} == {new_server}
    assert _status(node, new_server).state == pb.CONTAINER_RUNNING
    assert _record_ids(node, "sandboxes") == {new_web, new_db}
    assert _record_ids(node, "containers") == {new_server}
    storage = node.daemon.workdir / "root" / "storage" / "containers"
    assert {p.name for p in storage.iterdir()} == {new_server}
    assert [d for d in old_log_dirs if d.exists()] == []
    assert {p.name for p in (node.run_dir / "pods").iterdir()} == {new_web, new_db}
    assert not any(pod_id in mount for mount in netns_mounts(node.run_dir) for pod_id in old_pods)
    assert not any(pod_id in path for path in cgroup_leftovers(node.cgroup_parent) for pod_id in old_pods)

    for pod_id in (new_web, new_db):
        runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert leftovers(node.network) == []
    assert cgroup_leftovers(node.cgroup_parent) == []
    assert _record_ids(node, "sandboxes") | _record_ids(node, "containers") == set()


def test_a_pod_whose_namespace_pin_is_gone_still_releases_its_address(node: Node) -> None:
    """The pin unmounted under a running daemon leaves an empty file where the namespace was: the bridge
    plugin's DEL fails on a path that is no namespace (and keeps the address), so the DEL goes without one.
    Without the namespace bridge cannot tell which masquerade rules were the pod's: those stay."""
    pod_id, _ = _pod(node, "unpinned")
    pin = node.run_dir / "pods" / pod_id / "ns" / "net"
    subprocess.run(["umount", "-l", str(pin)], check=True)
    assert pin.is_file()
    assert _ipam(node)
    _call(node.cri.runtime.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert _ipam(node) == set()
    _call(node.cri.runtime.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert [item for item in leftovers(node.network) if not item.startswith("iptables ")] == []

"""What a real kubelet sends, through the real daemon, runc and conmon on this host (docs/kubelet.md).

The kubelet has made its QoS cgroup tree before it calls RunPodSandbox, in the hierarchies it uses only (not
in name=systemd); here a tree with a unique name stands in for `/kubepods`, made in some hierarchies only,
with limits in its files. Pods use a private CNI bridge (`pckube0`, 10.93.0.0/24).
"""

import contextlib
import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.cri_client import CriClient
from tests.e2e.containers_support import IMAGE, log_lines, seed_busybox_image, status, wait_exited, wait_until
from tests.e2e.daemon import Daemon
from tests.e2e.kubelet_requests import CPU_PERIOD, CPU_QUOTA, CPU_SHARES, MEMORY_LIMIT, KubeletPod
from tests.pod_host import cleanup_run_dir

V1 = Path("/sys/fs/cgroup")
# The hierarchies the stand-in kubelet makes its tree in; runc and pycrio use the others too.
KUBELET_HIERARCHIES = ("cpu", "cpuacct", "cpuset", "memory", "pids")
BRIDGE = "pckube0"
CNI_CONF = {
    "cniVersion": "1.0.0",
    "name": "pctest-kubelet",
    "plugins": [
        {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
         "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.93.0.0/24"}]], "dataDir": "@DATA@"}},
        {"type": "loopback"},
    ],
}  # fmt: skip
BURSTABLE_SHARES = "1234"
POD_MEMORY_LIMIT = str(256 << 20)


@dataclass
class KubeletTree:
    """A kubelet-like QoS tree: `<root>`, `<root>/burstable`, `<root>/burstable/pod<uid>` per pod."""

    root: str
    made: list[Path] = field(default_factory=list)

    @property
    def burstable(self) -> str:
        return f"{self.root}/burstable"

    def make(self, path: str) -> None:
        for hierarchy in KUBELET_HIERARCHIES:
            directory = V1 / hierarchy / path.lstrip("/")
            directory.mkdir()
            self.made.append(directory)
            if hierarchy == "cpuset":  # as the kubelet's cgroup manager does
                for name in ("cpuset.cpus", "cpuset.mems"):
                    (directory / name).write_text((directory.parent / name).read_text())

    def make_pod(self, uid: str) -> str:
        path = f"{self.burstable}/pod{uid}"
        self.make(path)
        (V1 / "memory" / path.lstrip("/") / "memory.limit_in_bytes").write_text(POD_MEMORY_LIMIT)
        return path

    def snapshot(self) -> dict[str, str]:
        """Every directory the kubelet made, with the limits the test wrote into them."""
        found = {}
        for directory in self.made:
            relative = directory.relative_to(V1)
            found[str(relative)] = "dir" if directory.is_dir() else "missing"
            for name in ("cpu.shares", "memory.limit_in_bytes"):
                if (directory / name).exists():
                    found[f"{relative}/{name}"] = (directory / name).read_text().strip()
        return found

    def _bases(self) -> list[Path]:
        bases = [h / self.root.lstrip("/") for h in V1.iterdir()]
        return [base for base in bases if base.is_dir()]

    def strays(self) -> list[str]:
        """Directories in or below the tree, in any hierarchy, that the kubelet stand-in did not make."""
        found = [p for base in self._bases() for p in (base, *base.rglob("*")) if p.is_dir()]
        return [str(p) for p in found if p not in self.made]

    def remove(self) -> list[str]:
        """Remove the whole tree, deepest first; returns the directories pycrio left in it."""
        left = self.strays()
        for base in self._bases():
            for directory in sorted([*base.rglob("*"), base], key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    directory.rmdir()
        return left


@dataclass
class Node:
    daemon: Daemon
    tree: KubeletTree
    image: str
    logs: Path
    kubelet_root: Path
    pods: list[str] = field(default_factory=list)

    @property
    def client(self) -> CriClient:
        return self.daemon.client

    def pod(self, suffix: str) -> KubeletPod:
        uid = f"{secrets.token_hex(4)}-{suffix}"
        self.tree.make_pod(uid)
        return KubeletPod(
            f"static-{suffix}", "default", uid, self.tree.burstable, self.logs, self.kubelet_root
        )

    def run_pod(self, pod: KubeletPod, attempt: int = 0) -> str:
        config = pod.sandbox_config(attempt)
        pod.log_directory.mkdir(parents=True, exist_ok=True)
        pod_id = str(self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id)
        self.pods.append(pod_id)
        return pod_id

    def create(self, pod_id: str, pod: KubeletPod, name: str, command: list[str], attempt: int = 0) -> str:
        (pod.log_directory / name).mkdir(parents=True, exist_ok=True)  # the kubelet makes it
        config = pod.container_config(name, self.image, command, attempt, pod.make_files(name))
        request = pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=config, sandbox_config=pod.sandbox_config()
        )
        return str(self.client.runtime.CreateContainer(request).container_id)

    def start(self, container_id: str) -> None:
        self.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))

    def remove_pod(self, pod_id: str) -> None:
        self.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        self.pods.remove(pod_id)


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    work = tmp_path_factory.mktemp("pctest-kubelet")
    image_id = seed_busybox_image(work / "pycrio" / "root", work)
    conf = work / "net.d"
    conf.mkdir()
    (conf / "10-pctest-kubelet.conflist").write_text(
        json.dumps(CNI_CONF).replace("@DATA@", str(work / "ipam"))
    )
    tree = KubeletTree(f"/pctest-kubepods-{secrets.token_hex(4)}")
    tree.make(tree.root)
    tree.make(tree.burstable)
    (V1 / "cpu" / tree.burstable.lstrip("/") / "cpu.shares").write_text(BURSTABLE_SHARES)
    daemon = Daemon(
        work / "pycrio",
        [f'network.cni_conf_dir="{conf}"', f'runtime.runtimes.runc.root="{work / "runc"}"'],
    )
    node = Node(daemon, tree, image_id, work / "pods", work / "kubelet")
    try:
        daemon.start()
        yield node
        for pod_id in list(node.pods):
            node.remove_pod(pod_id)
    finally:
        daemon.stop()
        cleanup_run_dir(daemon.workdir / "run")
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        left = tree.remove()
        assert not left, f"pycrio left cgroups in the kubelet's tree: {left}"


def _running(node: Node, container_id: str) -> pb.ContainerStatus:
    def running() -> pb.ContainerStatus | None:
        current = status(node.client, container_id).status
        return current if current.state == pb.CONTAINER_RUNNING else None

    return wait_until(running, what=f"container {container_id} to run")


def test_a_kubelet_container_with_zero_hugepage_limits_runs(node: Node) -> None:
    """The kubelet names every page size the node has (2MB, 1GB) with limit 0; on a host where runc's cgroup
    manager has no hugetlb controller they must not reach runc."""
    pod = node.pod("huge")
    pod_id = node.run_pod(pod)
    container_id = node.create(pod_id, pod, "app", ["/bin/sh", "-c", "echo started; exec sleep 600"])
    node.start(container_id)
    running = _running(node, container_id)
    assert running.log_path == str(pod.log_directory / "app" / "0.log")
    wait_until(lambda: ("stdout", "started") in log_lines(running.log_path), what="the container's output")
    hosts = node.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=container_id, cmd=["cat", "/etc/hosts"], timeout=30)
    )
    assert (
        hosts.stdout.decode() == (pod.pod_dir / "etc-hosts").read_text()
    )  # the kubelet's file, not pycrio's
    memory = (
        V1 / "memory" / pod.cgroup_parent.lstrip("/") / f"pycrio-{container_id}" / "memory.limit_in_bytes"
    )
    assert int(memory.read_text()) == MEMORY_LIMIT

    # UpdateContainerResources carries the same hugepage limits.
    update = pod.container_config("app", node.image, []).linux.resources
    update.memory_limit_in_bytes = update.memory_swap_limit_in_bytes = 2 * MEMORY_LIMIT
    node.client.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(container_id=container_id, linux=update)
    )
    assert int(memory.read_text()) == 2 * MEMORY_LIMIT
    node.remove_pod(pod_id)


def test_removing_pods_leaves_the_kubelet_s_cgroups_and_their_limits(node: Node) -> None:
    before = node.tree.snapshot()
    first, second = node.pod("first"), node.pod("second")
    first_id, second_id = node.run_pod(first), node.run_pod(second)
    with_pods = node.tree.snapshot()
    assert {k: v for k, v in with_pods.items() if k in before} == before

    # The pod cgroup is the kubelet's: pycrio records the new resources and leaves the limits to it.
    node.client.runtime.UpdatePodSandboxResources(
        pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=first_id,
            resources=pb.LinuxContainerResources(
                cpu_shares=900, memory_limit_in_bytes=512 << 20,
                hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=0)],
            ),
        )
    )  # fmt: skip
    assert node.tree.snapshot() == with_pods

    container_id = node.create(first_id, first, "app", ["/bin/sleep", "600"])
    node.start(container_id)
    _running(node, container_id)
    node.remove_pod(first_id)
    node.remove_pod(second_id)
    assert node.tree.snapshot() == with_pods
    assert with_pods[f"cpu{node.tree.burstable}/cpu.shares"] == BURSTABLE_SHARES
    assert with_pods[f"memory{first.cgroup_parent}/memory.limit_in_bytes"] == POD_MEMORY_LIMIT
    # What pycrio made for the pods (their infra cgroups, the tree in name=systemd) is gone again.
    assert node.tree.strays() == []


def test_a_kubelet_style_restart_makes_attempt_one_in_the_live_pod(node: Node) -> None:
    pod = node.pod("restart")
    pod_id = node.run_pod(pod)
    first = node.create(pod_id, pod, "app", ["/bin/sh", "-c", "echo attempt-0; exit 1"])
    node.start(first)
    exited = wait_exited(node.client, first)
    assert (exited.exit_code, exited.metadata.attempt) == (1, 0)

    second = node.create(pod_id, pod, "app", ["/bin/sh", "-c", "echo attempt-1; exec sleep 600"], attempt=1)
    node.start(second)
    running = _running(node, second)
    assert running.metadata.attempt == 1
    assert running.annotations["io.kubernetes.container.restartCount"] == "1"
    assert running.log_path == str(pod.log_directory / "app" / "1.log")
    wait_until(lambda: ("stdout", "attempt-1") in log_lines(running.log_path), what="attempt 1's output")
    assert log_lines(str(pod.log_directory / "app" / "0.log")) == [("stdout", "attempt-0")]

    # Both are listed in the pod, by the kubelet's labels; the old one is then removed, as the kubelet does.
    listed = node.client.runtime.ListContainers(
        pb.ListContainersRequest(
            filter=pb.ContainerFilter(
                pod_sandbox_id=pod_id, label_selector={"io.kubernetes.container.name": "app"}
            )
        )
    ).containers
    assert sorted((c.metadata.attempt, c.id) for c in listed) == [(0, first), (1, second)]
    pods = node.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert [p.state for p in pods if p.id == pod_id] == [pb.SANDBOX_READY]
    node.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=first))
    assert (pod.log_directory / "app" / "1.log").exists()
    node.remove_pod(pod_id)


def test_container_status_reports_the_log_path_it_was_given_across_a_restart(node: Node) -> None:
    """The kubelet deletes `<log path>*` relative to its working directory for a container whose status has
    an empty log path: the path it set must come back, for exited containers and after a daemon restart."""
    pod = node.pod("logs")
    pod_id = node.run_pod(pod)
    container_id = node.create(pod_id, pod, "once", ["/bin/true"])
    expected = str(pod.log_directory / "once" / "0.log")
    assert status(node.client, container_id).status.log_path == expected
    node.start(container_id)
    assert wait_exited(node.client, container_id).log_path == expected
    node.daemon.stop()
    node.daemon.start()
    assert status(node.client, container_id).status.log_path == expected
    listed = node.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert container_id in [c.id for c in listed]
    node.remove_pod(pod_id)


def test_a_log_path_outside_the_pod_log_directory_is_refused(node: Node) -> None:
    pod = node.pod("badlog")
    pod_id = node.run_pod(pod)
    config = pod.container_config("app", node.image, ["/bin/true"])
    config.log_path = "../../escape.log"
    with pytest.raises(grpc.RpcError) as raised:
        node.client.runtime.CreateContainer(
            pb.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=config, sandbox_config=pod.sandbox_config()
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "log_path" in str(raised.value.details())
    node.remove_pod(pod_id)


def test_the_cpu_manager_s_cpuset_only_update_keeps_the_limits(node: Node) -> None:
    """A kubelet with `cpuManagerPolicy: static` sends UpdateContainerResources with nothing but
    `cpuset_cpus` for every container each reconcile period. It changes the cpuset; the limits stay, in the
    cgroup and in what ContainerStatus reports (a cluster kubelet showed them gone from the status)."""
    pod = node.pod("cpuset")
    pod_id = node.run_pod(pod)
    container_id = node.create(pod_id, pod, "app", ["/bin/sleep", "600"])
    node.start(container_id)
    _running(node, container_id)
    cgroup = f"{pod.cgroup_parent.lstrip('/')}/pycrio-{container_id}"
    cpus = (V1 / "cpuset" / cgroup / "cpuset.cpus").read_text().strip()
    first = cpus.replace("-", ",").split(",")[0]
    node.client.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(
            container_id=container_id, linux=pb.LinuxContainerResources(cpuset_cpus=first)
        )
    )
    assert (V1 / "cpuset" / cgroup / "cpuset.cpus").read_text().strip() == first
    assert int((V1 / "memory" / cgroup / "memory.limit_in_bytes").read_text()) == MEMORY_LIMIT
    assert int((V1 / "cpu" / cgroup / "cpu.cfs_quota_us").read_text()) == CPU_QUOTA
    reported = status(node.client, container_id).status.resources.linux
    assert (reported.cpuset_cpus, reported.cpu_quota, reported.cpu_period, reported.cpu_shares) == (
        first,
        CPU_QUOTA,
        CPU_PERIOD,
        CPU_SHARES,
    )
    assert reported.memory_limit_in_bytes == MEMORY_LIMIT

    # An in-place resize afterwards (the kubelet's full set) changes the limits and keeps the cpuset.
    resize = pod.container_config("app", node.image, []).linux.resources
    resize.memory_limit_in_bytes = resize.memory_swap_limit_in_bytes = 2 * MEMORY_LIMIT
    node.client.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(container_id=container_id, linux=resize)
    )
    reported = status(node.client, container_id).status.resources.linux
    assert (reported.memory_limit_in_bytes, reported.cpuset_cpus) == (2 * MEMORY_LIMIT, first)
    assert int((V1 / "memory" / cgroup / "memory.limit_in_bytes").read_text()) == 2 * MEMORY_LIMIT
    node.remove_pod(pod_id)


def test_an_absolute_fqdn_hostname_from_set_hostname_as_fqdn_runs(node: Node) -> None:
    """A pod with `hostname`, `subdomain` and `setHostnameAsFQDN: true` gets `<host>.<sub>.<ns>.svc.<domain>`
    as its hostname; a kubelet whose clusterDomain is empty (the default without kubeadm) sends it with a
    trailing dot. containerd and cri-o run such a pod; so must pycrio."""
    pod = node.pod("fqdn")
    config = pod.sandbox_config()
    config.hostname = "myhost.mysub.default.svc."
    pod.log_directory.mkdir(parents=True, exist_ok=True)
    pod_id = node.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    node.pods.append(pod_id)
    container_id = node.create(pod_id, pod, "app", ["/bin/sleep", "600"])
    node.start(container_id)
    _running(node, container_id)
    seen = node.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=container_id, cmd=["hostname"], timeout=30)
    )
    assert seen.stdout.decode().strip() == "myhost.mysub.default.svc."
    node.remove_pod(pod_id)

    # Longer than the kernel takes (64): refused up front, naming the field, not a failed sethostname.
    config.hostname = "h" * 65
    with pytest.raises(grpc.RpcError) as raised:
        node.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "PodSandboxConfig.hostname" in str(raised.value.details())


# The kubelet's lists (kuberuntime's listOptions): every pod and container (the PLEG relist, an empty filter,
# not an absent one), one pod's by its uid label (a pod's status), running containers only (housekeeping).
POD_UID_LABEL = "io.kubernetes.pod.uid"
# Waits for /empty-dir/go (the kubelet's emptyDir, see KubeletPod.make_files) and exits with this code.
EXIT_CODE = 3
WAIT_THEN_EXIT = ["/bin/sh", "-c", f"until [ -e /empty-dir/go ]; do sleep 0.2; done; exit {EXIT_CODE}"]


@dataclass(frozen=True)
class Relist:
    pods: dict[str, int]  # sandbox id -> state
    containers: dict[str, int]  # container id -> state
    pod_containers: dict[str, int]  # the same, listed by the pod's uid label
    running: frozenset[str]  # ids listed by the RUNNING state filter


def _relist(node: Node, pod: KubeletPod) -> Relist:
    """What the kubelet's generic PLEG and pod status ask, and nothing else (no ContainerStatus)."""
    runtime = node.client.runtime
    by_uid = {POD_UID_LABEL: pod.uid}
    pods = runtime.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter())).items
    every = runtime.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter())).containers
    mine = runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(label_selector=by_uid))
    ).containers
    running = runtime.ListContainers(
        pb.ListContainersRequest(
            filter=pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))
        )
    ).containers
    return Relist(
        pods={p.id: p.state for p in pods},
        containers={c.id: c.state for c in every},
        pod_containers={c.id: c.state for c in mine},
        running=frozenset(c.id for c in running),
    )


def _relisted_as(node: Node, pod: KubeletPod, container_id: str, state: int) -> Relist:
    def listed() -> Relist | None:
        seen = _relist(node, pod)
        return seen if seen.containers.get(container_id) == state else None

    return wait_until(listed, what=f"a relist to show {container_id} as {pb.ContainerState.Name(state)}")


def _let_exit(pod: KubeletPod) -> None:
    (pod.pod_dir / "volumes" / "kubernetes.io~empty-dir" / "work" / "go").touch()


def test_a_relist_alone_sees_each_exit_and_restart_of_a_crash_looping_container(node: Node) -> None:
    """The generic PLEG learns of exits only from its relist: an answer kept while the container ran must
    not be given again once it has exited, in any of the kubelet's filters, with no ContainerStatus asked."""
    pod = node.pod("relist")
    pod_id = node.run_pod(pod)
    first = node.create(pod_id, pod, "crasher", WAIT_THEN_EXIT)
    assert _relist(node, pod).containers[first] == pb.CONTAINER_CREATED
    node.start(first)
    running = _relisted_as(node, pod, first, pb.CONTAINER_RUNNING)
    assert _relist(node, pod) == running  # asked again unchanged: the kept answers
    assert running.pod_containers[first] == pb.CONTAINER_RUNNING and first in running.running

    _let_exit(pod)
    exited = _relisted_as(node, pod, first, pb.CONTAINER_EXITED)
    assert exited.pod_containers[first] == pb.CONTAINER_EXITED
    assert first not in exited.running
    assert exited.pods[pod_id] == pb.SANDBOX_READY
    assert status(node.client, first).status.exit_code == EXIT_CODE  # what the relist made it ask

    # The restart: attempt 1 is created, the dead attempt 0 removed (the kubelet keeps one), then started.
    second = node.create(pod_id, pod, "crasher", WAIT_THEN_EXIT, attempt=1)
    both = _relist(node, pod)
    assert both.pod_containers == {first: pb.CONTAINER_EXITED, second: pb.CONTAINER_CREATED}
    node.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=first))
    assert first not in _relist(node, pod).pod_containers
    node.start(second)  # /empty-dir/go is still there: attempt 1 exits at once
    again = _relisted_as(node, pod, second, pb.CONTAINER_EXITED)
    assert list(again.pod_containers) == [second] and second not in again.running
    node.remove_pod(pod_id)
    assert pod_id not in _relist(node, pod).pods


def test_an_exit_while_the_daemon_was_killed_is_in_its_first_relist(node: Node) -> None:
    """pycrio is killed with SIGKILL while a container runs, the container exits meanwhile: the first relist
    after the restart shows the exit, before anything asks for the container's status."""
    pod = node.pod("downtime")
    pod_id = node.run_pod(pod)
    container_id = node.create(pod_id, pod, "app", WAIT_THEN_EXIT)
    node.start(container_id)
    assert _relisted_as(node, pod, container_id, pb.CONTAINER_RUNNING).pods[pod_id] == pb.SANDBOX_READY
    pid = json.loads(status(node.client, container_id, verbose=True).info["info"])["pid"]

    node.daemon.stop(signal.SIGKILL)
    _let_exit(pod)
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), what="the container's process to end")
    node.daemon.start()
    first = _relist(node, pod)
    assert first.containers[container_id] == pb.CONTAINER_EXITED
    assert first.pod_containers[container_id] == pb.CONTAINER_EXITED
    assert container_id not in first.running
    assert first.pods[pod_id] == pb.SANDBOX_READY
    assert status(node.client, container_id).status.exit_code == EXIT_CODE
    node.remove_pod(pod_id)


def test_an_evented_kubelet_hears_at_once_of_an_infra_process_that_died(node: Node) -> None:
    """With EventedPLEG the kubelet relists only every five minutes and otherwise follows GetContainerEvents:
    a pod whose infra process was killed must be reported (its infra container STOPPED, the pod NOTREADY)
    although nothing lists the pods or asks for their status."""
    pod = node.pod("infra")
    pod_id = node.run_pod(pod)
    procs = V1 / "memory" / pod.cgroup_parent.lstrip("/") / f"pycrio-{pod_id}" / "cgroup.procs"
    (infra_pid,) = [int(pid) for pid in procs.read_text().split()]
    events = node.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=60)
    events.initial_metadata()
    os.kill(infra_pid, signal.SIGKILL)
    stopped = next(event for event in events if event.container_id == pod_id)
    events.cancel()
    assert stopped.container_event_type == pb.CONTAINER_STOPPED_EVENT
    assert (stopped.pod_sandbox_status.id, stopped.pod_sandbox_status.state) == (pod_id, pb.SANDBOX_NOTREADY)
    assert _relist(node, pod).pods[pod_id] == pb.SANDBOX_NOTREADY
    node.remove_pod(pod_id)


def test_an_evented_kubelet_hears_of_a_container_that_ended_after_its_conmon_died(node: Node) -> None:
    """conmon is SIGKILLed, then the container ends by itself: nothing records its exit, yet the evented
    kubelet gets CONTAINER_STOPPED_EVENT (255, Error) and a relist shows it EXITED, with no ContainerStatus
    asked after the fault."""
    pod = node.pod("conmon")
    pod_id = node.run_pod(pod)
    container_id = node.create(pod_id, pod, "app", WAIT_THEN_EXIT)
    node.start(container_id)
    _running(node, container_id)
    pid_file = node.daemon.workdir / "run" / "conmon" / container_id / "conmon.pid"
    conmon = int(pid_file.read_text())
    events = node.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=60)
    events.initial_metadata()
    os.kill(conmon, signal.SIGKILL)
    wait_until(lambda: not Path(f"/proc/{conmon}").exists(), what="conmon to be reaped")
    assert _relist(node, pod).containers[container_id] == pb.CONTAINER_RUNNING  # it runs on unmonitored
    _let_exit(pod)
    stopped = next(event for event in events if event.container_id == container_id)
    events.cancel()
    assert stopped.container_event_type == pb.CONTAINER_STOPPED_EVENT
    (described,) = [c for c in stopped.containers_statuses if c.id == container_id]
    assert (described.state, described.exit_code, described.reason) == (pb.CONTAINER_EXITED, 255, "Error")
    relisted = _relist(node, pod)
    assert relisted.containers[container_id] == pb.CONTAINER_EXITED and container_id not in relisted.running
    node.remove_pod(pod_id)


def test_an_evented_kubelet_s_pod_status_is_newer_than_the_event_it_follows(node: Node) -> None:
    """With EventedPLEG the kubelet caches an event's statuses under its created_at, then asks
    PodSandboxStatus and caches that answer under its timestamp, and only if that is not older: so the
    answer carries the pod's container statuses, gathered no earlier than its timestamp, which is later than
    the event's. The image is named as the pod spec named it (user_specified_image)."""
    pod = node.pod("evented-status")
    pod_id = node.run_pod(pod)
    container_id = node.create(pod_id, pod, "app", WAIT_THEN_EXIT)
    node.start(container_id)
    _running(node, container_id)
    events = node.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=60)
    events.initial_metadata()
    _let_exit(pod)
    stopped = next(event for event in events if event.container_id == container_id)
    events.cancel()
    answer = node.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    assert answer.timestamp > stopped.created_at
    (described,) = answer.containers_statuses
    assert (described.id, described.state, described.exit_code) == (
        container_id,
        pb.CONTAINER_EXITED,
        EXIT_CODE,
    )
    assert (described.image.image, described.image.user_specified_image) == (IMAGE, "busybox:latest")
    assert described == stopped.containers_statuses[0]
    node.remove_pod(pod_id)


def test_an_evented_kubelet_finds_a_restarted_container_s_running_attempt_first(node: Node) -> None:
    """An evented kubelet's GetPodStatus takes PodSandboxStatus's container statuses as they come (it sorts
    only the ones it lists itself) and takes a container's status as the first of its name. After a restart
    the dead attempt 0 stays next to the running attempt 1 (the kubelet keeps one): attempt 1 must come
    first, or the kubelet sees the container exited and creates attempt 1 again (seen with a kubelet v1.36.2
    relisting after a pycrio restart: "name ... is reserved", the pod unready, the container in back-off)."""
    pod = node.pod("attempts")
    pod_id = node.run_pod(pod)
    first = node.create(pod_id, pod, "app", WAIT_THEN_EXIT)
    node.start(first)
    _let_exit(pod)
    wait_exited(node.client, first)
    (pod.pod_dir / "volumes" / "kubernetes.io~empty-dir" / "work" / "go").unlink()
    second = node.create(pod_id, pod, "app", WAIT_THEN_EXIT, attempt=1)
    node.start(second)
    _running(node, second)
    answer = node.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    listed = [(c.id, c.state, c.metadata.attempt) for c in answer.containers_statuses]
    assert listed == [(second, pb.CONTAINER_RUNNING, 1), (first, pb.CONTAINER_EXITED, 0)]
    node.remove_pod(pod_id)

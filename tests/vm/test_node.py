"""A pod and its containers on a systemd + cgroup v2 node, with each cgroup driver: limits land in the
systemd units and the cgroup v2 files, resources update, OOM kills are reported, stats come from cgroup v2,
exec and logs work, `systemctl restart pycrio` leaves pods running, and removal leaves nothing behind."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.cgroups.cgroupfs import shares_to_weight
from adapters.cri.generated import api_pb2 as pb
from adapters.systemd.dbus_units import DbusSystemdUnits
from domain.cgroup_paths import expand_slice
from tests.e2e.containers_support import log_lines, wait_exited
from tests.vm.conftest import CGROUP_ROOT, MIB, UNIT, Node, alive, cgroup_of, systemctl, unit_property

SLEEP = ["sh", "-c", "echo started; exec sleep 3600"]


class Running:
    """The module's long-lived pod and container (made by the first test, used by the others)."""

    pod_id = ""
    pod: pb.PodSandboxConfig
    uid = ""
    container_id = ""


@pytest.fixture(scope="module")
def running(node: Node) -> Running:
    state = Running()
    state.uid = str(uuid.uuid4())
    state.pod_id, state.pod = node.run_pod("limits", cgroup_parent=node.pod_parent(state.uid))
    state.container_id = node.run_container(
        state.pod_id,
        state.pod,
        "sleeper",
        SLEEP,
        cpu_shares=512,
        cpu_quota=50000,
        cpu_period=100000,
        memory_limit_in_bytes=64 * MIB,
        memory_swap_limit_in_bytes=64 * MIB,
        cpuset_cpus="0",
        hugepage_limits=[pb.HugepageLimit(page_size="2MB", limit=4 * MIB)],
        unified={"pids.max": "100", "memory.high": str(48 * MIB)},
    )
    return state


def _read(directory: Path, name: str) -> str:
    return (directory / name).read_text().strip()


def test_the_container_s_limits_are_in_its_cgroup_v2_files(node: Node, running: Running) -> None:
    pid = int(node.container_info(running.container_id)["pid"])
    directory = cgroup_of(pid)
    assert _read(directory, "memory.max") == str(64 * MIB)
    assert _read(directory, "memory.swap.max") == "0"  # CRI's swap limit counts memory + swap
    assert _read(directory, "memory.high") == str(48 * MIB)
    assert _read(directory, "cpu.max") == "50000 100000"
    assert _read(directory, "cpu.weight") == str(shares_to_weight(512))
    assert _read(directory, "cpuset.cpus") == "0"
    assert _read(directory, "pids.max") == "100"
    assert _read(directory, "hugetlb.2MB.max") == str(4 * MIB)


def test_the_cgroups_are_where_the_driver_puts_them(node: Node, running: Running) -> None:
    container_pid = int(node.container_info(running.container_id)["pid"])
    infra_pid = node.infra_pid(running.pod_id)
    conmon_pid = node.conmon_pid(running.container_id)
    parent = node.pod_parent(running.uid)
    if node.driver == "systemd":
        pod_dir = CGROUP_ROOT / expand_slice(parent).lstrip("/")
        scope = f"pycrio-{running.container_id}.scope"
        assert cgroup_of(container_pid) == pod_dir / scope
        assert cgroup_of(infra_pid) == pod_dir / f"pycrio-{running.pod_id}.scope"
        assert cgroup_of(conmon_pid) == pod_dir / f"pycrio-conmon-{running.container_id}.scope"
        # systemd owns them: units with the limits as properties, delegated to the runtime.
        assert unit_property(scope, "ActiveState") == "active"
        assert unit_property(scope, "MemoryMax") == str(64 * MIB)
        assert unit_property(f"pycrio-{running.pod_id}.scope", "Delegate") == "yes"
        assert unit_property(f"pycrio-conmon-{running.container_id}.scope", "ActiveState") == "active"
        assert unit_property(parent, "ActiveState") == "active"
    else:
        pod_dir = CGROUP_ROOT / parent.lstrip("/")
        assert cgroup_of(container_pid) == pod_dir / f"pycrio-{running.container_id}"
        assert cgroup_of(infra_pid) == pod_dir / f"pycrio-{running.pod_id}"
        # conmon left the service's cgroup for one beside the pod's containers (cri-o's crio-conmon-<id>).
        assert cgroup_of(conmon_pid) == pod_dir / f"pycrio-conmon-{running.container_id}"


def test_update_container_resources_changes_the_files(node: Node, running: Running) -> None:
    node.client.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(
            container_id=running.container_id,
            linux=pb.LinuxContainerResources(
                cpu_shares=256, cpu_quota=20000, cpu_period=100000, memory_limit_in_bytes=96 * MIB,
                memory_swap_limit_in_bytes=96 * MIB,
            ),
        )
    )  # fmt: skip
    directory = cgroup_of(int(node.container_info(running.container_id)["pid"]))
    assert _read(directory, "memory.max") == str(96 * MIB)
    assert _read(directory, "cpu.max") == "20000 100000"
    assert _read(directory, "cpu.weight") == str(shares_to_weight(256))
    if node.driver == "systemd":
        assert unit_property(f"pycrio-{running.container_id}.scope", "MemoryMax") == str(96 * MIB)
    status = node.client.runtime.ContainerStatus(pb.ContainerStatusRequest(container_id=running.container_id))
    assert status.status.resources.linux.memory_limit_in_bytes == 96 * MIB


def test_update_pod_sandbox_resources_sets_the_pod_cgroup(node: Node, running: Running) -> None:
    node.client.runtime.UpdatePodSandboxResources(
        pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=running.pod_id,
            overhead=pb.LinuxContainerResources(memory_limit_in_bytes=16 * MIB),
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=256 * MIB, cpu_shares=1024),
        )
    )
    parent = node.pod_parent(running.uid)
    if node.driver == "systemd":
        pod_dir = CGROUP_ROOT / expand_slice(parent).lstrip("/")
        assert unit_property(parent, "MemoryMax") == str(272 * MIB)
    else:
        pod_dir = CGROUP_ROOT / parent.lstrip("/")
    assert _read(pod_dir, "memory.max") == str(272 * MIB)
    assert _read(pod_dir, "cpu.weight") == str(shares_to_weight(1024))


def test_exec_and_logs(node: Node, running: Running) -> None:
    response = node.client.runtime.ExecSync(
        pb.ExecSyncRequest(
            container_id=running.container_id, cmd=["sh", "-c", "echo out; echo err >&2"], timeout=60
        )
    )
    assert (response.exit_code, response.stdout, response.stderr) == (0, b"out\n", b"err\n")
    log_path = node.client.runtime.ContainerStatus(
        pb.ContainerStatusRequest(container_id=running.container_id)
    ).status.log_path
    assert ("stdout", "started") in log_lines(log_path)


def test_stats_come_from_cgroup_v2_with_pressure(node: Node, running: Running) -> None:
    node.client.runtime.ExecSync(
        pb.ExecSyncRequest(
            container_id=running.container_id,
            cmd=["sh", "-c", "busybox dd if=/dev/zero of=/tmp/f bs=1M count=8"],
            timeout=60,
        )
    )
    stats = node.client.runtime.ContainerStats(
        pb.ContainerStatsRequest(container_id=running.container_id)
    ).stats
    assert stats.cpu.usage_core_nano_seconds.value > 0
    assert stats.memory.working_set_bytes.value > 0
    assert stats.memory.usage_bytes.value >= stats.memory.working_set_bytes.value
    assert stats.memory.available_bytes.value <= 96 * MIB
    # PSI (cpu.pressure, memory.pressure, io.pressure): the fields are there, totals are counters.
    for usage in (stats.cpu, stats.memory, stats.io):
        assert usage.HasField("psi"), usage
        assert usage.psi.Some.Total >= 0 and usage.psi.Full.Total >= 0
    assert stats.cpu.psi.Some.Total > 0 or stats.memory.psi.Some.Total >= 0
    pod = node.client.runtime.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=running.pod_id)).stats
    assert pod.linux.cpu.usage_core_nano_seconds.value >= stats.cpu.usage_core_nano_seconds.value
    assert pod.linux.process.process_count.value >= 2  # infra + sleep
    assert pod.linux.cpu.HasField("psi")


def test_restarting_the_service_keeps_pods_and_containers(node: Node, running: Running) -> None:
    infra = node.infra_pid(running.pod_id)
    container = int(node.container_info(running.container_id)["pid"])
    conmon = node.conmon_pid(running.container_id)
    daemon = node.main_pid()
    node.restart()
    assert node.main_pid() != daemon
    assert alive(infra) and alive(container) and alive(conmon)
    assert node.infra_pid(running.pod_id) == infra
    assert int(node.container_info(running.container_id)["pid"]) == container
    listed = node.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert [(c.id, c.state) for c in listed if c.id == running.container_id] == [
        (running.container_id, pb.CONTAINER_RUNNING)
    ]
    sandbox = node.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=running.pod_id))
    assert sandbox.status.state == pb.SANDBOX_READY
    response = node.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=running.container_id, cmd=["echo", "still here"], timeout=60)
    )
    assert response.stdout == b"still here\n"
    # The watchdog was pinged (WatchdogSec=30s in the test's drop-in).
    assert int(unit_property(UNIT, "NRestarts")) == 0


def test_an_oom_kill_is_reported_as_oomkilled(node: Node) -> None:
    pod_id, pod = node.run_pod("oom", cgroup_parent=node.pod_parent(str(uuid.uuid4())))
    container_id = node.run_container(
        pod_id, pod, "hog", ["busybox", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        memory_limit_in_bytes=16 * MIB, memory_swap_limit_in_bytes=16 * MIB,
    )  # fmt: skip
    try:
        status = wait_exited(node.client, container_id)
        assert (status.reason, status.exit_code) == ("OOMKilled", 137)
    finally:
        node.remove_pod(pod_id)


def test_remove_pod_sandbox_leaves_no_unit_and_no_cgroup(node: Node, running: Running) -> None:
    parent = node.pod_parent(running.uid)
    pod_dir = CGROUP_ROOT / (expand_slice(parent) if node.driver == "systemd" else parent).lstrip("/")
    assert pod_dir.is_dir()
    node.remove_pod(running.pod_id)
    assert not pod_dir.exists()
    top = CGROUP_ROOT / ("kubepods.slice" if node.driver == "systemd" else "kubepods")
    assert not top.exists(), list(top.rglob("*"))[:5]
    if node.driver == "systemd":
        units = ("pycrio-*.scope", "kubepods*.slice")
        loaded = json.loads(systemctl("list-units", "--all", "--output=json", *units))
        assert loaded == [], loaded


def test_a_parent_given_as_a_path_as_critest_sends_it(node: Node) -> None:
    """critest's parent is `/test.slice` with the systemd driver: a path whose last part is the slice (cri-o
    takes that part); with cgroupfs a plain path."""
    parent = "/pycriovm.slice" if node.driver == "systemd" else "/pycriovm"
    pod_id, pod = node.run_pod("path-parent", cgroup_parent=parent)
    container_id = node.run_container(pod_id, pod, "sleeper", SLEEP)
    container_pid = int(node.container_info(container_id)["pid"])
    name = f"pycrio-{container_id}.scope" if node.driver == "systemd" else f"pycrio-{container_id}"
    assert cgroup_of(container_pid) == CGROUP_ROOT / parent.lstrip("/") / name


def test_pods_run_while_the_dbus_daemon_is_stopped(node: Node) -> None:
    """runc and the kubelet reach systemd on its private socket as root, so a node whose D-Bus daemon is
    stopped (or restarting) still runs their pods; pycrio's systemd driver must not be the one thing that
    needs the bus. A fresh daemon, so that no connection made while the bus was up is reused."""
    systemctl("stop", "dbus.socket", "dbus.service")
    try:
        node.restart()
        pod_id, pod = node.run_pod("no-dbus", cgroup_parent=node.pod_parent(str(uuid.uuid4())))
        container_id = node.run_container(pod_id, pod, "sleeper", SLEEP, memory_limit_in_bytes=32 * MIB)
        directory = cgroup_of(int(node.container_info(container_id)["pid"]))
        assert _read(directory, "memory.max") == str(32 * MIB)
        if node.driver == "systemd":
            assert directory.name == f"pycrio-{container_id}.scope"
            assert unit_property(directory.name, "ActiveState") == "active"
        node.remove_pod(pod_id)
        assert not directory.exists()
    finally:
        systemctl("start", "dbus.socket")


def test_pods_made_and_removed_in_parallel(node: Node) -> None:
    """The kubelet's pod workers run side by side: pods and containers made and removed from several
    threads at once all succeed (with the systemd driver their units' jobs overlap on one connection). The
    QoS parents are made first, as the kubelet makes them, so they stay."""
    if node.driver == "systemd":
        qos = DbusSystemdUnits()
        qos.start_slice("kubepods-burstable.slice", {})
    else:
        (CGROUP_ROOT / "kubepods" / "burstable").mkdir(parents=True)

    ids: list[str] = []

    def one(index: int) -> None:
        pod_id, pod = node.run_pod(f"parallel{index}", cgroup_parent=node.pod_parent(str(uuid.uuid4())))
        container_id = node.run_container(pod_id, pod, "sleeper", SLEEP, memory_limit_in_bytes=32 * MIB)
        ids.extend((pod_id, container_id))
        assert node.container_info(container_id)["pid"]
        node.remove_pod(pod_id)

    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(one, range(4)))
        if node.driver == "systemd":
            units = json.loads(systemctl("list-units", "--all", "--output=json", "pycrio-*.scope"))
            assert [u["unit"] for u in units if any(i in u["unit"] for i in ids)] == []
            assert len(ids) == 8
            assert [p.name for p in (CGROUP_ROOT / "kubepods.slice" / "kubepods-burstable.slice").iterdir()
                    if p.is_dir()] == []  # fmt: skip
        else:
            assert [p.name for p in (CGROUP_ROOT / "kubepods" / "burstable").iterdir() if p.is_dir()] == []
    finally:
        if node.driver == "systemd":
            qos.stop("kubepods.slice")
            qos.close()
        else:
            (CGROUP_ROOT / "kubepods" / "burstable").rmdir()
            (CGROUP_ROOT / "kubepods").rmdir()

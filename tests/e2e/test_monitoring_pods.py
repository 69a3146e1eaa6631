"""Monitoring of real pods through the daemon: events, pod stats with network bytes, metrics, Prometheus.

Networks use a bridge named pcmon<hex> and a /24 in 10.89.0.0/16; pod cgroups live under
/pycrio-test-monitoring. Everything is removed afterwards, also when a test fails.
"""

import secrets
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.e2e.monitoring_support import eventually, free_port, monitoring_network, remove_cgroup_tree
from tests.pod_host import HostTestNetwork, cleanup, cleanup_run_dir, remove_cgroups

pytestmark = pytest.mark.root


class World:
    def __init__(self, daemon: Daemon, network: HostTestNetwork, cgroup_root: str, metrics_port: int) -> None:
        self.daemon = daemon
        self.network = network
        self.cgroup_root = cgroup_root
        self.metrics_port = metrics_port

    @property
    def runtime(self) -> Any:
        return self.daemon.client.runtime

    def run_pod(self, name: str, cgroup_parent: str = "") -> str:
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="e2e-monitoring"),
            labels={"app": name},
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent),
        )
        sandbox_id = str(self.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id)
        self.network.sandbox_ids.add(sandbox_id)
        return sandbox_id

    def remove_pod(self, sandbox_id: str) -> None:
        self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    def pod_stats(self, sandbox_id: str) -> pb.PodSandboxStats:
        stats: pb.PodSandboxStats = self.runtime.PodSandboxStats(
            pb.PodSandboxStatsRequest(pod_sandbox_id=sandbox_id)
        ).stats
        return stats

    def pod_ip(self, sandbox_id: str) -> str:
        status = self.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id)).status
        return str(status.network.ip)

    def scrape(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("monitoring-e2e")
    network = monitoring_network(root)
    cgroup_root = f"/pycrio-test-monitoring/e2e-{secrets.token_hex(4)}"
    port = free_port()
    daemon = Daemon(
        root / "pycrio",
        [
            f'network.cni_conf_dir="{network.conf_dir}"',
            f'pods.default_cgroup_parent="{cgroup_root}/default"',
            "stats.period=0.5",
            "metrics.enabled=true",
            f"metrics.port={port}",
        ],
    ).start()
    created = World(daemon, network, cgroup_root, port)
    try:
        yield created
    finally:
        try:
            for pod in created.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items:
                created.remove_pod(pod.id)
        finally:
            daemon.stop()
            cleanup_run_dir(daemon.workdir / "run")
            cleanup(network)
            remove_cgroups(cgroup_root)
            assert remove_cgroup_tree(cgroup_root) == []


def test_pod_lifecycle_reaches_every_event_client_in_order(world: World) -> None:
    first = world.runtime.GetContainerEvents(pb.GetEventsRequest())
    second = world.runtime.GetContainerEvents(pb.GetEventsRequest())
    first.initial_metadata()
    second.initial_metadata()
    sandbox_id = world.run_pod("events")
    world.remove_pod(sandbox_id)
    expected = [
        pb.CONTAINER_CREATED_EVENT,
        pb.CONTAINER_STARTED_EVENT,
        pb.CONTAINER_STOPPED_EVENT,
        pb.CONTAINER_DELETED_EVENT,
    ]
    for stream in (first, second):
        got = [next(stream) for _ in expected]
        stream.cancel()
        assert [e.container_event_type for e in got] == expected
        assert {e.container_id for e in got} == {sandbox_id}
        assert {e.pod_sandbox_status.id for e in got} == {sandbox_id}
        assert got[0].pod_sandbox_status.metadata.name == "events"
        assert got[1].pod_sandbox_status.state == pb.SANDBOX_READY
        assert got[2].pod_sandbox_status.state == pb.SANDBOX_NOTREADY
        assert [e.created_at for e in got] == sorted(e.created_at for e in got)


def test_pod_stats_show_network_bytes_after_traffic(world: World) -> None:
    sandbox_id = world.run_pod("traffic")
    try:
        address = world.pod_ip(sandbox_id)
        before = eventually(
            lambda: world.pod_stats(sandbox_id).linux.network,
            lambda network: network.default_interface.name == "eth0",
            "the pod's eth0 in its stats",
        )
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for _ in range(50):
                sender.sendto(b"m" * 1000, (address, 9))
        finally:
            sender.close()
        start = before.default_interface.rx_bytes.value
        after = eventually(
            lambda: world.pod_stats(sandbox_id).linux.network.default_interface,
            lambda eth0: eth0.rx_bytes.value >= start + 50 * 1000,
            "received bytes after 50 datagrams of 1000 bytes",
        )
        assert after.rx_errors.value == 0
        listed = world.runtime.ListPodSandboxStats(
            pb.ListPodSandboxStatsRequest(filter=pb.PodSandboxStatsFilter(label_selector={"app": "traffic"}))
        ).stats
        assert [s.attributes.id for s in listed] == [sandbox_id]
        metrics = world.runtime.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
        mine = next(m for m in metrics if m.pod_sandbox_id == sandbox_id)
        received = {
            m.label_values[-1]: m.value.value
            for m in mine.metrics
            if m.name == "container_network_receive_bytes_total"
        }
        assert received["eth0"] >= start + 50 * 1000
    finally:
        world.remove_pod(sandbox_id)


def test_a_pod_with_its_own_cgroup_reports_cpu_memory_and_processes(world: World) -> None:
    sandbox_id = world.run_pod("cgroup", cgroup_parent=f"{world.cgroup_root}/podcgroup")
    try:
        stats = eventually(
            lambda: world.pod_stats(sandbox_id).linux,
            lambda linux: linux.process.process_count.value >= 1,
            "the infra process counted in the pod cgroup",
        )
        assert stats.memory.usage_bytes.value > 0
        assert stats.memory.working_set_bytes.value <= stats.memory.usage_bytes.value
        assert stats.cpu.timestamp > 0
        assert world.pod_stats(sandbox_id).attributes.metadata.uid == "uid-cgroup"
    finally:
        world.remove_pod(sandbox_id)


def test_prometheus_counts_the_pod_rpcs(world: World) -> None:
    def calls(text: str, method: str) -> float:
        prefix = f'pycrio_cri_operations_total{{method="{method}"}} '
        return next(
            (float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)), 0.0
        )

    before = world.scrape()
    sandbox_id = world.run_pod("prometheus")
    world.remove_pod(sandbox_id)
    after = world.scrape()
    assert calls(after, "RunPodSandbox") == calls(before, "RunPodSandbox") + 1
    assert calls(after, "RemovePodSandbox") == calls(before, "RemovePodSandbox") + 1

"""Stats over gRPC from the real host: a v1 cgroup with a working process, a netns with traffic, a real
writable-layer directory. Only the workload inventory is a fake (it stands in for the containers and pods
services until they are wired in); every number comes from the kernel.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.cgroups.v1 import CgroupV1StatsReader
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.pod_metrics import PodMetricsHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.cri.stats import StatsHandlers
from adapters.diskusage.walk import WalkingDiskUsage
from adapters.netns.stats import NetnsStatsReader
from adapters.procfs.process_stats import ProcfsProcessStats
from adapters.system.clock import SystemClock
from domain.stats import StatsService
from ports.workloads import ContainerInfo, PodInfo
from tests.cri_client import CriClient, connect
from tests.fakes.workloads import FakeWorkloadInventory
from tests.host.cgroups import ROOT, Worker, scratch_cgroup
from tests.host.netns import LinkedNamespaces, linked_namespaces

pytestmark = pytest.mark.root
MIB = 1024 * 1024


@dataclass
class Host:
    client: CriClient
    service: StatsService
    worker: Worker
    pair: LinkedNamespaces
    upper: Path


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    upper = tmp_path / "upper"
    upper.mkdir()
    with scratch_cgroup() as cgroup, linked_namespaces() as pair:
        inventory = FakeWorkloadInventory()
        inventory.add_pod(
            PodInfo(id="pod1", name="web", namespace="default", uid="u1", netns_path=pair.left_path)
        )
        inventory.add_container(
            ContainerInfo(
                id="ctr1", pod_id="pod1", name="app", cgroup=cgroup, upper_dir=str(upper), running=True
            )
        )
        # period 0: every call samples afresh, so the test sees each change without waiting for a sweep.
        service = StatsService(
            inventory,
            CgroupV1StatsReader(ROOT, "cgroupfs"),
            NetnsStatsReader(),
            WalkingDiskUsage(),
            ProcfsProcessStats(),
            SystemClock(),
            period=0,
            disk_usage_period=0,
        )
        groups = [StatsHandlers(service), PodMetricsHandlers(service, SystemClock())]
        server = CriServer(tmp_path / "cri.sock", 0o660, runtime_service(groups), image_service([]), 4)
        server.start()
        client = connect(tmp_path / "cri.sock")
        worker = Worker(cgroup)
        try:
            yield Host(client, service, worker, pair, upper)
        finally:
            worker.stop()
            client.close()
            server.stop(1)


def container_stats(host: Host) -> pb.ContainerStats:
    stats: pb.ContainerStats = host.client.runtime.ContainerStats(
        pb.ContainerStatsRequest(container_id="ctr1")
    ).stats
    return stats


def test_container_stats_rise_while_it_burns_cpu_and_allocates(host: Host) -> None:
    host.worker.work(8)
    before = container_stats(host)
    host.worker.work(64)
    after = container_stats(host)
    assert after.cpu.usage_core_nano_seconds.value > before.cpu.usage_core_nano_seconds.value
    assert after.cpu.HasField("usage_nano_cores") and after.cpu.usage_nano_cores.value > 0
    assert after.memory.working_set_bytes.value >= before.memory.working_set_bytes.value + 48 * MIB
    assert after.memory.usage_bytes.value >= before.memory.usage_bytes.value + 48 * MIB
    assert after.memory.rss_bytes.value >= before.memory.rss_bytes.value + 48 * MIB
    assert after.memory.page_faults.value > before.memory.page_faults.value
    assert after.cpu.timestamp > before.cpu.timestamp
    listed = host.client.runtime.ListContainerStats(pb.ListContainerStatsRequest()).stats
    assert [s.attributes.id for s in listed] == ["ctr1"]


def test_writable_layer_grows_with_files(host: Host) -> None:
    before = container_stats(host).writable_layer
    (host.upper / "data").write_bytes(b"w" * 2 * MIB)
    after = container_stats(host).writable_layer
    assert after.fs_id.mountpoint == str(host.upper)
    assert after.used_bytes.value >= before.used_bytes.value + 2 * MIB
    assert after.inodes_used.value == before.inodes_used.value + 1


def test_pod_stats_show_network_bytes_after_traffic(host: Host) -> None:
    def eth0() -> pb.NetworkInterfaceUsage:
        stats = host.client.runtime.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id="pod1")).stats
        assert stats.linux.network.default_interface.name == "eth0"
        interface: pb.NetworkInterfaceUsage = stats.linux.network.default_interface
        return interface

    before = eth0()
    host.pair.send_udp(50)
    after = eth0()
    assert after.tx_bytes.value >= before.tx_bytes.value + 50 * 1000
    metrics = host.client.runtime.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
    sent = next(m for m in metrics[0].metrics if m.name == "container_network_transmit_bytes_total")
    assert sent.value.value >= after.tx_bytes.value


def test_pod_stats_without_a_pod_cgroup_add_up_containers(host: Host) -> None:
    host.worker.work(4)
    stats = host.client.runtime.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id="pod1")).stats
    assert stats.linux.cpu.usage_core_nano_seconds.value > 0
    assert stats.linux.memory.working_set_bytes.value > 0
    assert stats.linux.process.process_count.value >= 1
    assert [c.attributes.id for c in stats.linux.containers] == ["ctr1"]

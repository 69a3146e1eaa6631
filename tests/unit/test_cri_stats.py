"""The stats and pod-metrics handlers over a real gRPC server, with fakes behind the stats service."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.pod_metrics import PodMetricsHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from adapters.cri.stats import StatsHandlers
from domain.stats import StatsService
from ports.disk_usage import DiskUsage
from ports.workloads import ContainerInfo, PodInfo
from tests.cri_client import CriClient, connect
from tests.cri_tools_metrics import CRI_TOOLS_EXPECTED, CRI_TOOLS_OPTIONAL_VALUES, CRI_TOOLS_UNIMPLEMENTED
from tests.fakes.cgroup_stats import FakeCgroupStatsReader, sample
from tests.fakes.clock import FakeClock
from tests.fakes.disk_usage import FakeDiskUsage
from tests.fakes.net_stats import FakeNetworkStatsReader
from tests.fakes.process_stats import FakeProcessStats
from tests.fakes.workloads import FakeWorkloadInventory

MIB = 1024 * 1024


@dataclass
class World:
    inventory: FakeWorkloadInventory
    cgroups: FakeCgroupStatsReader
    network: FakeNetworkStatsReader
    disk: FakeDiskUsage
    clock: FakeClock
    service: StatsService
    client: CriClient

    def add_pod(self, pod_id: str, labels: dict[str, str] | None = None) -> None:
        netns = f"/run/netns/{pod_id}"
        self.inventory.add_pod(
            PodInfo(
                id=pod_id,
                name=f"pod-{pod_id}",
                namespace="ns1",
                uid=f"uid-{pod_id}",
                attempt=1,
                labels=labels or {},
                annotations={"a": "b"},
                cgroup_parent=f"/kubepods/{pod_id}",
                netns_path=netns,
            )
        )
        self.cgroups.set(
            f"/kubepods/{pod_id}", sample(cpu_usage_ns=10**9, memory_usage_bytes=64 * MIB, pids_current=3)
        )
        self.network.add(netns, "eth0")

    def add_container(self, cid: str, pod_id: str, labels: dict[str, str] | None = None) -> None:
        self.inventory.add_container(
            ContainerInfo(
                id=cid,
                pod_id=pod_id,
                name=f"name-{cid}",
                attempt=2,
                labels=labels or {},
                image="registry.local/app:1",
                cgroup=f"/kubepods/{pod_id}/{cid}",
                upper_dir=f"/layers/{cid}",
                running=True,
            )
        )
        self.cgroups.set(
            f"/kubepods/{pod_id}/{cid}",
            sample(
                cpu_usage_ns=3 * 10**9,
                memory_usage_bytes=40 * MIB,
                memory_working_set_bytes=30 * MIB,
                memory_rss_bytes=20 * MIB,
                memory_limit_bytes=100 * MIB,
                page_faults=11,
                major_page_faults=1,
                swap_usage_bytes=MIB,
                swap_limit_bytes=8 * MIB,
                pids_current=2,
            ),
        )
        self.disk.trees[f"/layers/{cid}"] = DiskUsage(12288, 3)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    inventory, cgroups, network = FakeWorkloadInventory(), FakeCgroupStatsReader(), FakeNetworkStatsReader()
    disk, clock = FakeDiskUsage(), FakeClock()
    service = StatsService(
        inventory, cgroups, network, disk, FakeProcessStats(), clock, period=1, disk_usage_period=60
    )
    groups = [StatsHandlers(service), PodMetricsHandlers(service, clock)]
    server = CriServer(tmp_path / "cri.sock", 0o660, runtime_service(groups), image_service([]), 8)
    server.start()
    client = connect(tmp_path / "cri.sock")
    yield World(inventory, cgroups, network, disk, clock, service, client)
    client.close()
    server.stop(1)


def test_container_stats_carry_every_field(world: World) -> None:
    world.add_pod("p1")
    world.add_container("c1", "p1", labels={"app": "web"})
    world.service.container_stats("c1")  # the sample the rate is taken from
    world.clock.advance(2)
    world.cgroups.set(
        "/kubepods/p1/c1",
        sample(
            cpu_usage_ns=4 * 10**9,
            memory_usage_bytes=40 * MIB,
            memory_working_set_bytes=30 * MIB,
            memory_limit_bytes=100 * MIB,
        ),
    )
    stats = world.client.runtime.ContainerStats(pb.ContainerStatsRequest(container_id="c1")).stats
    assert stats.attributes.id == "c1"
    assert stats.attributes.metadata.name == "name-c1" and stats.attributes.metadata.attempt == 2
    assert dict(stats.attributes.labels) == {"app": "web"}
    assert stats.cpu.usage_core_nano_seconds.value == 4 * 10**9
    assert stats.cpu.usage_nano_cores.value == 500_000_000
    assert stats.cpu.timestamp == world.clock.now_ns()
    assert stats.memory.working_set_bytes.value == 30 * MIB
    assert stats.memory.usage_bytes.value == 40 * MIB
    assert stats.memory.available_bytes.value == 70 * MIB
    assert stats.writable_layer.fs_id.mountpoint == "/layers/c1"
    assert (stats.writable_layer.used_bytes.value, stats.writable_layer.inodes_used.value) == (12288, 3)


def test_first_sample_has_no_rate_and_swap_shows_when_accounted(world: World) -> None:
    world.add_pod("p1")
    world.add_container("c1", "p1")
    stats = world.client.runtime.ContainerStats(pb.ContainerStatsRequest(container_id="c1")).stats
    assert not stats.cpu.HasField("usage_nano_cores")
    assert stats.memory.rss_bytes.value == 20 * MIB
    assert (stats.memory.page_faults.value, stats.memory.major_page_faults.value) == (11, 1)
    assert stats.swap.swap_usage_bytes.value == MIB
    assert stats.swap.swap_available_bytes.value == 7 * MIB


def test_list_container_stats_filters(world: World) -> None:
    world.add_pod("p1")
    world.add_pod("p2")
    world.add_container("aaa", "p1", labels={"tier": "web"})
    world.add_container("bbb", "p1", labels={"tier": "db"})
    world.add_container("ccc", "p2", labels={"tier": "web"})

    def ids(**selector: object) -> set[str]:
        request = pb.ListContainerStatsRequest(filter=pb.ContainerStatsFilter(**selector))  # type: ignore[arg-type]
        return {s.attributes.id for s in world.client.runtime.ListContainerStats(request).stats}

    assert ids() == {"aaa", "bbb", "ccc"}
    assert ids(id="bbb") == {"bbb"}
    assert ids(pod_sandbox_id="p2") == {"ccc"}
    assert ids(label_selector={"tier": "web"}) == {"aaa", "ccc"}
    assert ids(pod_sandbox_id="p1", label_selector={"tier": "web"}) == {"aaa"}


def test_stream_container_stats_sends_each_once_in_chunks(world: World) -> None:
    world.add_pod("p1")
    for i in range(250):
        world.add_container(f"c{i:03}", "p1")
    responses = list(world.client.runtime.StreamContainerStats(pb.StreamContainerStatsRequest()))
    assert [len(r.container_stats) for r in responses] == [100, 100, 50]
    ids = [s.attributes.id for r in responses for s in r.container_stats]
    assert sorted(ids) == [f"c{i:03}" for i in range(250)]


def test_pod_sandbox_stats(world: World) -> None:
    world.add_pod("p1", labels={"app": "x"})
    world.add_container("c1", "p1")
    world.network.transfer("/run/netns/p1", "eth0", sent=500, received=900)
    stats = world.client.runtime.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id="p1")).stats
    assert stats.attributes.metadata.uid == "uid-p1" and stats.attributes.metadata.namespace == "ns1"
    assert dict(stats.attributes.annotations) == {"a": "b"}
    assert stats.linux.cpu.usage_core_nano_seconds.value == 10**9
    assert stats.linux.memory.usage_bytes.value == 64 * MIB
    assert stats.linux.process.process_count.value == 3
    assert stats.linux.network.default_interface.name == "eth0"
    assert stats.linux.network.default_interface.rx_bytes.value == 900
    assert stats.linux.network.default_interface.tx_bytes.value == 500
    assert [i.name for i in stats.linux.network.interfaces] == ["eth0"]
    assert [c.attributes.id for c in stats.linux.containers] == ["c1"]


def test_list_and_stream_pod_sandbox_stats(world: World) -> None:
    world.add_pod("p1", labels={"app": "x"})
    world.add_pod("p2", labels={"app": "y"})
    listed = world.client.runtime.ListPodSandboxStats(
        pb.ListPodSandboxStatsRequest(filter=pb.PodSandboxStatsFilter(label_selector={"app": "y"}))
    ).stats
    assert [s.attributes.id for s in listed] == ["p2"]
    streamed = list(world.client.runtime.StreamPodSandboxStats(pb.StreamPodSandboxStatsRequest()))
    assert sorted(s.attributes.id for r in streamed for s in r.pod_sandbox_stats) == ["p1", "p2"]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (
            lambda c: c.runtime.ContainerStats(pb.ContainerStatsRequest(container_id="nope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        (lambda c: c.runtime.ContainerStats(pb.ContainerStatsRequest()), grpc.StatusCode.INVALID_ARGUMENT),
        (
            lambda c: c.runtime.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id="nope")),
            grpc.StatusCode.NOT_FOUND,
        ),
        (lambda c: c.runtime.PodSandboxStats(pb.PodSandboxStatsRequest()), grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_bad_requests_get_clear_codes(world: World, call: object, code: grpc.StatusCode) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        call(world.client)  # type: ignore[operator]
    assert failure.value.code() == code


def test_descriptors_are_unique_stable_and_cover_what_the_kubelet_reads(world: World) -> None:
    first = world.client.runtime.ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors
    second = world.client.runtime.ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors
    assert list(first) == list(second)
    names = [d.name for d in first]
    assert len(names) == len(set(names))
    assert set(names) >= CRI_TOOLS_EXPECTED - CRI_TOOLS_UNIMPLEMENTED
    assert all(
        d.help and list(d.label_keys[:5]) == ["id", "image", "namespace", "pod", "container"] for d in first
    )


def test_pod_sandbox_metrics_match_their_descriptors_and_the_samples(world: World) -> None:
    world.add_pod("p1")
    world.add_container("c1", "p1")
    world.network.transfer("/run/netns/p1", "eth0", received=4242)
    descriptors = {
        d.name: d
        for d in world.client.runtime.ListMetricDescriptors(pb.ListMetricDescriptorsRequest()).descriptors
    }
    (pod,) = world.client.runtime.ListPodSandboxMetrics(pb.ListPodSandboxMetricsRequest()).pod_metrics
    assert pod.pod_sandbox_id == "p1"
    (container,) = pod.container_metrics
    assert container.container_id == "c1"
    every = [*pod.metrics, *container.metrics]
    for metric in every:
        assert len(metric.label_values) == len(descriptors[metric.name].label_keys), metric.name
    # As cri-tools checks it: every descriptor has values (block I/O may have none).
    missing = set(descriptors) - {m.name for m in every} - CRI_TOOLS_OPTIONAL_VALUES - CRI_TOOLS_UNIMPLEMENTED
    assert missing == set()

    def value(metrics: Iterable[pb.Metric], name: str) -> pb.Metric:
        return next(m for m in metrics if m.name == name)

    working_set = value(container.metrics, "container_memory_working_set_bytes")
    assert working_set.value.value == 30 * MIB and working_set.metric_type == pb.GAUGE
    assert list(working_set.label_values) == ["c1", "registry.local/app:1", "ns1", "pod-p1", "name-c1"]
    cpu = value(container.metrics, "container_cpu_usage_seconds_total")
    assert cpu.value.value == 3 and cpu.metric_type == pb.COUNTER and cpu.label_values[-1] == "total"
    assert value(container.metrics, "container_fs_usage_bytes").value.value == 12288
    received = value(pod.metrics, "container_network_receive_bytes_total")
    assert received.value.value == 4242
    assert list(received.label_values) == ["p1", "", "ns1", "pod-p1", "POD", "eth0"]
    streamed = list(world.client.runtime.StreamPodSandboxMetrics(pb.StreamPodSandboxMetricsRequest()))
    assert [m.pod_sandbox_id for r in streamed for m in r.pod_sandbox_metrics] == ["p1"]

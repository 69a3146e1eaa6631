"""StatsService against fakes: rates, sampling when asked and the short cache, filters, pods, layers."""

from dataclasses import replace
from typing import Any

import pytest

from domain.errors import NotFound
from domain.stats import ContainerStatsFilter, PodStatsFilter, StatsService, nano_cores
from ports.disk_usage import DiskUsage
from ports.workloads import ContainerInfo, PodInfo
from tests.fakes.cgroup_stats import FakeCgroupStatsReader, sample
from tests.fakes.clock import FakeClock
from tests.fakes.disk_usage import FakeDiskUsage
from tests.fakes.net_stats import FakeNetworkStatsReader
from tests.fakes.process_stats import FakeProcessStats
from tests.fakes.workloads import FakeWorkloadInventory

MIB = 1024 * 1024


class World:
    def __init__(self, period: float = 1.0, disk_usage_period: float = 60.0) -> None:
        self.inventory = FakeWorkloadInventory()
        self.cgroups = FakeCgroupStatsReader()
        self.network = FakeNetworkStatsReader()
        self.disk = FakeDiskUsage()
        self.clock = FakeClock()
        self.processes = FakeProcessStats()
        self.service = StatsService(
            self.inventory,
            self.cgroups,
            self.network,
            self.disk,
            self.processes,
            self.clock,
            period,
            disk_usage_period,
        )

    def pod(self, pod_id: str, **kw: Any) -> PodInfo:
        pod = PodInfo(id=pod_id, name=f"name-{pod_id}", namespace="default", uid=f"uid-{pod_id}", **kw)
        self.inventory.add_pod(pod)
        return pod

    def container(self, cid: str, pod_id: str, cpu_ns: int = 0, **kw: Any) -> ContainerInfo:
        info = ContainerInfo(
            id=cid, pod_id=pod_id, name=f"name-{cid}", cgroup=f"/pods/{pod_id}/{cid}", running=True, **kw
        )
        self.inventory.add_container(info)
        self.cgroups.set(info.cgroup, sample(cpu_usage_ns=cpu_ns, memory_usage_bytes=10 * MIB))
        return info


def test_rate_is_taken_from_the_previous_sample() -> None:
    world = World()
    world.pod("p1")
    world.container("c1", "p1", cpu_ns=1_000_000_000)
    first = world.service.container_stats("c1")
    assert first.cpu is not None and first.cpu.usage_nano_cores is None
    world.clock.advance(2)
    world.cgroups.set("/pods/p1/c1", sample(cpu_usage_ns=2_000_000_000))
    second = world.service.container_stats("c1")
    assert second.cpu is not None
    assert second.cpu.usage_core_ns == 2_000_000_000
    assert second.cpu.usage_nano_cores == 500_000_000  # half a core over two seconds


def test_rate_edge_cases() -> None:
    from domain.stats import CpuUsage

    before = CpuUsage(1000, 500, 42, sampled_at=7.0)
    assert nano_cores(None, 10, 10) is None
    assert nano_cores(before, 900, 7.0) == 42  # no time passed: keep the last rate
    assert nano_cores(before, 100, 8.0) is None  # counter went back: cgroup recreated


@pytest.mark.parametrize("jump", [-3600, 3600])
def test_a_wall_clock_step_between_samples_does_not_bend_the_rate(jump: float) -> None:
    """An NTP step or `date -s` between two samples: the rate is taken over the time that really passed
    (before, an hour forward read as a nearly idle container and an hour back kept the old rate)."""
    world = World()
    world.pod("p1")
    world.container("c1", "p1", cpu_ns=1_000_000_000)
    world.service.container_stats("c1")
    world.clock.step_wall_clock(jump)
    world.clock.advance(2)
    world.cgroups.set("/pods/p1/c1", sample(cpu_usage_ns=2_000_000_000))
    second = world.service.container_stats("c1")
    assert second.cpu is not None and second.cpu.usage_nano_cores == 500_000_000
    assert second.cpu.timestamp_ns == world.clock.now_ns()  # the CRI timestamp is the wall clock's


def test_nothing_is_sampled_until_asked_then_a_burst_of_calls_shares_one_sample() -> None:
    world = World(period=1.0)
    world.pod("p1")
    for i in range(5):
        world.container(f"c{i}", "p1")
    world.clock.advance(60)
    assert world.cgroups.reads == 0  # no background sweeps
    assert len(world.service.list_container_stats(ContainerStatsFilter())) == 5
    reads = world.cgroups.reads
    for _ in range(3):
        assert len(world.service.list_container_stats(ContainerStatsFilter())) == 5
        assert len(world.service.list_pod_stats(PodStatsFilter())) == 1
        assert world.service.container_stats("c1").cpu is not None
    assert world.cgroups.reads == reads  # the pod (no cgroup of its own) adds up its cached containers


def test_a_sample_older_than_the_period_is_taken_again() -> None:
    world = World(period=1.0)
    world.pod("p1")
    world.container("c1", "p1", cpu_ns=7)
    assert world.service.container_stats("c1").cpu.usage_core_ns == 7  # type: ignore[union-attr]
    world.cgroups.set("/pods/p1/c1", sample(cpu_usage_ns=9))
    world.clock.advance(0.5)
    assert world.service.container_stats("c1").cpu.usage_core_ns == 7  # type: ignore[union-attr]
    world.clock.advance(0.5)
    assert world.service.container_stats("c1").cpu.usage_core_ns == 9  # type: ignore[union-attr]


def test_period_zero_samples_every_call() -> None:
    world = World(period=0)
    world.pod("p1")
    world.container("c1", "p1", cpu_ns=1)
    world.service.container_stats("c1")
    world.cgroups.set("/pods/p1/c1", sample(cpu_usage_ns=5))
    stats = world.service.container_stats("c1")
    assert stats.cpu is not None and stats.cpu.usage_core_ns == 5


def test_filters() -> None:
    world = World()
    world.pod("p1")
    world.pod("p2")
    world.container("aaa1", "p1", labels={"app": "web"})
    world.container("bbb2", "p1", labels={"app": "db"})
    world.container("ccc3", "p2", labels={"app": "web"})

    def ids(selector: ContainerStatsFilter) -> set[str]:
        return {s.container.id for s in world.service.list_container_stats(selector)}

    assert ids(ContainerStatsFilter()) == {"aaa1", "bbb2", "ccc3"}
    assert ids(ContainerStatsFilter(id="aaa")) == {"aaa1"}
    assert ids(ContainerStatsFilter(pod_id="p1")) == {"aaa1", "bbb2"}
    assert ids(ContainerStatsFilter(labels={"app": "web"})) == {"aaa1", "ccc3"}
    assert ids(ContainerStatsFilter(pod_id="p2", labels={"app": "db"})) == set()


def test_stopped_containers_are_not_listed_but_answer_with_attributes() -> None:
    world = World()
    world.pod("p1")
    info = world.container("c1", "p1")
    world.inventory.add_container(replace(info, running=False))
    assert world.service.list_container_stats(ContainerStatsFilter()) == []
    stats = world.service.container_stats("c1")
    assert stats.container.id == "c1" and stats.cpu is None and stats.memory is None


def test_unknown_ids_are_not_found() -> None:
    world = World()
    with pytest.raises(NotFound):
        world.service.container_stats("nope")
    with pytest.raises(NotFound):
        world.service.pod_stats("nope")


def test_a_container_whose_cgroup_vanished_is_skipped() -> None:
    world = World()
    world.pod("p1")
    world.container("c1", "p1")
    world.container("c2", "p1")
    world.cgroups.remove("/pods/p1/c2")
    assert [s.container.id for s in world.service.list_container_stats(ContainerStatsFilter())] == ["c1"]


def test_pod_stats_hold_cgroup_network_processes_and_containers() -> None:
    world = World()
    world.pod("p1", cgroup_parent="/pods/p1", netns_path="/run/netns/p1")
    world.cgroups.set("/pods/p1", sample(cpu_usage_ns=3, memory_usage_bytes=30 * MIB, pids_current=4))
    world.network.add("/run/netns/p1", "eth0", "net1")
    world.network.transfer("/run/netns/p1", "eth0", sent=100, received=200)
    world.container("c1", "p1")
    stats = world.service.pod_stats("p1")
    assert stats.cpu is not None and stats.cpu.usage_core_ns == 3
    assert stats.memory is not None and stats.memory.usage_bytes == 30 * MIB
    assert stats.process is not None and stats.process.process_count == 4
    assert stats.network is not None and stats.network.default_interface is not None
    assert stats.network.default_interface.name == "eth0"
    assert stats.network.default_interface.tx_bytes == 100
    assert [i.name for i in stats.network.interfaces] == ["eth0", "net1"]  # no loopback
    assert [c.container.id for c in stats.containers] == ["c1"]


def test_pod_without_its_own_cgroup_adds_up_its_containers() -> None:
    world = World()
    world.pod("p1")
    world.container("c1", "p1", cpu_ns=10)
    world.container("c2", "p1", cpu_ns=32)
    stats = world.service.pod_stats("p1")
    assert stats.cpu is not None and stats.cpu.usage_core_ns == 42
    assert stats.memory is not None and stats.memory.usage_bytes == 20 * MIB
    assert stats.memory.available_bytes is None
    assert stats.network is None


def test_writable_layer_walks_are_rate_limited() -> None:
    world = World(period=1, disk_usage_period=30)
    world.pod("p1")
    world.container("c1", "p1", upper_dir="/layers/c1/diff")
    world.disk.trees["/layers/c1/diff"] = DiskUsage(4096, 3)
    for _ in range(5):
        world.service.list_container_stats(ContainerStatsFilter())
        world.clock.advance(1)
    layer = world.service.container_stats("c1").writable_layer
    assert layer is not None and (layer.used_bytes, layer.inodes_used, layer.mountpoint) == (
        4096,
        3,
        "/layers/c1/diff",
    )
    assert world.disk.walks == 1
    world.disk.trees["/layers/c1/diff"] = DiskUsage(8192, 4)
    world.clock.advance(30)
    layer = world.service.container_stats("c1").writable_layer
    assert layer is not None and layer.used_bytes == 8192
    assert world.disk.walks == 2


def test_removed_containers_leave_the_cache() -> None:
    world = World()
    world.pod("p1")
    world.container("c1", "p1", upper_dir="/layers/c1/diff")
    world.disk.trees["/layers/c1/diff"] = DiskUsage(4096, 3)
    world.service.list_container_stats(ContainerStatsFilter())
    world.service.list_pod_stats(PodStatsFilter())
    world.inventory.remove_container("c1")
    assert world.service.list_container_stats(ContainerStatsFilter()) == []
    # Nothing of it is kept: no cached sample, no CPU reading for a rate, no layer size.
    assert "c1" not in world.service._containers and "c/c1" not in world.service._cpu_history
    assert "c1" not in world.service._layers
    with pytest.raises(NotFound):
        world.service.container_stats("c1")


def test_a_pod_cached_before_its_container_started_is_sampled_again() -> None:
    # critest's pod-metrics spec starts a container just after RunPodSandbox; a call in between cached the
    # pod without it, and ListPodSandboxMetrics answered no metrics until the sample expired.
    world = World()
    world.pod("p1")
    world.service.list_pod_stats(PodStatsFilter())
    world.container("c1", "p1", cpu_ns=5)
    [stats] = world.service.list_pod_stats(PodStatsFilter())
    assert [c.container.id for c in stats.containers] == ["c1"]
    reads = world.cgroups.reads
    world.service.list_pod_stats(PodStatsFilter())
    assert world.cgroups.reads == reads  # cached again once it matches

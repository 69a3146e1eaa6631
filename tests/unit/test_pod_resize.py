"""UpdatePodSandboxResources over the real sandbox service with fakes: the pod cgroup's limits where pycrio
made it, only the record elsewhere, NotFound for an absent pod, and nothing changed by a refused update."""

import json
from typing import Any

import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import SandboxHandlers
from domain.container_config import HugepageLimit, Resources
from domain.errors import Internal, InvalidArgument, NotFound
from domain.pod_resources import pod_cgroup_limits, resources_from_record
from domain.sandboxes import STATE_KIND, SandboxService, SandboxSettings
from ports.cgroups import CgroupLimits
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.pod_containers import FakePodContainers
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.state_store import InMemoryStateStore

CTX: Any = None
MIB = 1 << 20


class Context:
    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        return None


class World:
    def __init__(self, driver: str = "cgroupfs") -> None:
        self.store = InMemoryStateStore()
        self.cgroups = FakeCgroups(cpus=4)
        self.hugepages = FakeHugePages(controller=True, sizes=frozenset({"2MB"}))
        self.settings = SandboxSettings(cgroup_driver=driver, default_cgroup_parent="/pycrio")
        self.service = self.restarted()
        self.handlers = SandboxHandlers(self.service)

    def restarted(self) -> SandboxService:
        return SandboxService(
            self.store,
            FakeNetwork(),
            FakeNamespaces(),
            FakeInfraProcesses(),
            FakePodFiles(),
            self.cgroups,
            FakePodContainers(),
            self.settings,
            self.hugepages,
        )

    def run(self, cgroup_parent: str = "", name: str = "web") -> str:
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="ns"),
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=cgroup_parent,
                resources=pb.LinuxContainerResources(cpu_shares=102, memory_limit_in_bytes=64 * MIB),
            ),
        )
        request = pb.RunPodSandboxRequest(config=config)
        return str(self.handlers.RunPodSandbox(request, Context()).pod_sandbox_id)

    def update(self, sandbox_id: str, **resources: Any) -> None:
        overhead = pb.LinuxContainerResources(cpu_shares=10, memory_limit_in_bytes=8 * MIB)
        request = pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=sandbox_id, overhead=overhead, resources=pb.LinuxContainerResources(**resources)
        )
        self.handlers.UpdatePodSandboxResources(request, CTX)

    def recorded(self, sandbox_id: str) -> Resources:
        """The resources as the sandbox's record on disk holds them."""
        document = self.store.get(STATE_KIND, sandbox_id)
        assert document is not None
        return resources_from_record(document["config"]["resources"])

    def verbose(self, sandbox_id: str) -> dict[str, Any]:
        request = pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True)
        info: dict[str, Any] = json.loads(self.handlers.PodSandboxStatus(request, CTX).info["info"])
        return info


def test_limits_are_the_sum_of_resources_and_overhead() -> None:
    limits = pod_cgroup_limits(
        Resources(cpu_shares=10, cpu_quota=5000, cpu_period=50000, memory_limit_in_bytes=100),
        Resources(cpu_shares=512, cpu_quota=20000, cpu_period=100000, memory_limit_in_bytes=1000,
                  cpuset_cpus="0-1", cpuset_mems="0", unified=(("memory.high", "900"),)),
    )  # fmt: skip
    assert limits == CgroupLimits(
        cpu_shares=522,
        cpu_quota_us=30000,  # the overhead's 5000 per 50000 is 10000 per 100000
        cpu_period_us=100000,
        memory_limit_bytes=1100,
        cpuset_cpus="0-1",
        cpuset_mems="0",
        unified=(("memory.high", "900"),),
    )


def test_hugepage_limits_add_up_per_size_and_only_settable_sizes_are_kept() -> None:
    # A limit of 0 is the kubelet's "none of this size".
    resources = Resources(hugepage_limits=(HugepageLimit("2MB", 4 * MIB), HugepageLimit("1GB", 0)))
    overhead = Resources(hugepage_limits=(HugepageLimit("2MB", 2 * MIB),))
    both = frozenset({"2MB", "1GB"})
    assert pod_cgroup_limits(overhead, resources, both).hugepage_limits == (("1GB", 0), ("2MB", 6 * MIB))
    assert pod_cgroup_limits(overhead, resources, frozenset({"2MB"})).hugepage_limits == (("2MB", 6 * MIB),)
    assert pod_cgroup_limits(overhead, resources).empty  # no hugetlb controller: nothing to write
    for bad, field in (
        (HugepageLimit("2M", 0), r"resources.hugepage_limits\[0\].page_size"),
        (HugepageLimit("2MB", -1), r"resources.hugepage_limits\[0\].limit"),
    ):
        with pytest.raises(InvalidArgument, match=field):
            pod_cgroup_limits(Resources(), Resources(hugepage_limits=(bad,)), both)


def test_the_pod_cgroup_pycrio_made_gets_the_hugepage_limits_the_host_can_set() -> None:
    world = World()  # the host has a hugetlb controller and 2MB pages only
    sid = world.run(cgroup_parent="/kubepods/pod-h")
    world.update(
        sid,
        memory_limit_in_bytes=64 * MIB,
        hugepage_limits=[
            pb.HugepageLimit(page_size="2MB", limit=0),
            pb.HugepageLimit(page_size="1GB", limit=0),
        ],
    )
    assert world.cgroups.limits["/kubepods/pod-h"].hugepage_limits == (("2MB", 0),)
    assert [h.page_size for h in world.recorded(sid).hugepage_limits] == ["2MB", "1GB"]


def test_unlimited_resources_stay_unlimited_whatever_the_overhead() -> None:
    limits = pod_cgroup_limits(Resources(cpu_quota=5000, memory_limit_in_bytes=100), Resources(cpu_quota=-1))
    assert (limits.cpu_quota_us, limits.memory_limit_bytes) == (-1, 0)
    assert pod_cgroup_limits(Resources(), Resources()).empty


@pytest.mark.parametrize(
    ("resources", "field"),
    [
        (Resources(cpu_shares=-2), "resources.cpu_shares"),
        (Resources(memory_limit_in_bytes=-1), "resources.memory_limit_in_bytes"),
        (Resources(cpu_quota=-5), "resources.cpu_quota"),
        (Resources(cpu_quota=10), "resources.cpu_quota"),
        (Resources(cpu_period=50), "resources.cpu_period"),
        (Resources(cpuset_cpus="0-"), "resources.cpuset_cpus"),
        (Resources(cpuset_mems="a"), "resources.cpuset_mems"),
        (Resources(unified=(("../memory.max", "1"),)), "resources.unified"),
        (Resources(cpu_quota=2**62), "resources.cpu_quota"),
        (Resources(cpuset_cpus="0-99999"), "resources.cpuset_cpus"),
        (Resources(cpuset_mems="3-1"), "resources.cpuset_mems"),
    ],
)
def test_values_no_cgroup_takes_are_invalid(resources: Resources, field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        pod_cgroup_limits(Resources(), resources)


def test_records_from_before_typed_resources_still_read() -> None:
    old = {
        "cpu_shares": "10",
        "memory_limit_in_bytes": "1048576",
        "cpuset_cpus": "0-1",
        "hugepage_limits": [{"page_size": "2MB", "limit": "4194304"}],
        "unified": {"memory.high": "900"},
    }
    expected = Resources(
        cpu_shares=10,
        memory_limit_in_bytes=1 << 20,
        cpuset_cpus="0-1",
        hugepage_limits=(HugepageLimit("2MB", 4 << 20),),
        unified=(("memory.high", "900"),),
    )
    assert resources_from_record(old) == expected
    assert resources_from_record({}) == Resources()


def test_the_pod_cgroup_pycrio_made_is_resized_and_the_record_persists() -> None:
    world = World()
    sid = world.run(cgroup_parent="/kubepods/pod-a")
    world.update(sid, cpu_shares=512, cpu_quota=50000, cpu_period=100000, memory_limit_in_bytes=256 * MIB,
                 cpuset_cpus="1-2")  # fmt: skip
    assert world.cgroups.limits == {
        "/kubepods/pod-a": CgroupLimits(
            cpu_shares=522,
            cpu_quota_us=50000,
            cpu_period_us=100000,
            memory_limit_bytes=264 * MIB,
            cpuset_cpus="1-2",
        )
    }
    expected = {"cpu_shares": "512", "cpu_quota": "50000", "cpu_period": "100000",
                "memory_limit_in_bytes": str(256 * MIB), "cpuset_cpus": "1-2"}  # fmt: skip
    assert world.verbose(sid)["resources"] == expected
    assert world.verbose(sid)["overhead"] == {"cpu_shares": "10", "memory_limit_in_bytes": str(8 * MIB)}
    typed = Resources(
        cpu_shares=512, cpu_quota=50000, cpu_period=100000, memory_limit_in_bytes=256 * MIB, cpuset_cpus="1-2"
    )
    assert world.recorded(sid) == typed
    after_restart = world.restarted().status(sid)
    assert after_restart.config.resources == typed


def test_a_pod_without_a_cgroup_of_its_own_only_records_them() -> None:
    world = World()
    world.cgroups.create("/kubepods/pod-b")  # the kubelet's pod cgroup, which it resizes itself
    kubelets = world.run(cgroup_parent="/kubepods/pod-b", name="kubelets")
    shared = world.run(name="default-parent")  # in the daemon's shared /pycrio
    for sid in (kubelets, shared):
        world.update(sid, cpu_shares=300, memory_limit_in_bytes=128 * MIB)
        assert world.verbose(sid)["resources"] == {
            "cpu_shares": "300",
            "memory_limit_in_bytes": str(128 * MIB),
        }
    assert world.cgroups.limits == {}


def test_the_systemd_driver_sets_them_on_the_pod_slice_it_made() -> None:
    world = World(driver="systemd")
    sid = world.run(cgroup_parent="kubepods-pod_c.slice")
    world.update(sid, cpu_shares=300)
    assert world.verbose(sid)["resources"] == {"cpu_shares": "300"}
    assert world.cgroups.limits == {"/kubepods.slice/kubepods-pod_c.slice": CgroupLimits(cpu_shares=310)}


def test_the_systemd_driver_only_records_them_for_a_slice_it_did_not_make() -> None:
    world = World(driver="systemd")
    world.cgroups.create("/kubepods.slice/kubepods-pod_k.slice")  # the kubelet's
    sid = world.run(cgroup_parent="kubepods-pod_k.slice")
    world.update(sid, cpu_shares=300)
    assert world.verbose(sid)["resources"] == {"cpu_shares": "300"}
    assert world.cgroups.limits == {}


def test_an_absent_pod_is_not_found_and_an_empty_id_invalid() -> None:
    world = World()
    with pytest.raises(NotFound):
        world.update("no-such-pod", cpu_shares=300)
    with pytest.raises(InvalidArgument):
        world.update("", cpu_shares=300)
    sid = world.run(cgroup_parent="/kubepods/pod-d")
    world.handlers.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sid), CTX)
    with pytest.raises(NotFound):
        world.update(sid, cpu_shares=300)


def test_a_refused_update_keeps_the_old_record_and_limits() -> None:
    world = World()
    sid = world.run(cgroup_parent="/kubepods/pod-e")
    world.update(sid, cpu_shares=512)
    kept = world.cgroups.limits.copy()
    record = world.recorded(sid)
    with pytest.raises(Internal, match=r"cpuset\.cpus"):
        world.update(sid, cpu_shares=1024, cpuset_cpus="0-7")  # the fake host has 4 CPUs
    with pytest.raises(InvalidArgument):
        world.update(sid, cpu_shares=1024, cpu_period=10)
    assert world.cgroups.limits == kept
    assert world.recorded(sid) == record == Resources(cpu_shares=512)
    assert world.verbose(sid)["resources"] == {"cpu_shares": "512"}


def test_v2_weights_follow_runc_s_conversion() -> None:
    from adapters.cgroups.cgroupfs import shares_to_weight

    assert [shares_to_weight(s) for s in (0, 2, 1024, 262144, 10**6)] == [1, 1, 39, 10000, 10000]

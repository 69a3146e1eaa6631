"""The sandbox lifecycle against fakes: creation, name reservation, retries, stop/remove, restart."""

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from adapters.cgroups.systemd import SystemdCgroups
from domain.container_config import Resources
from domain.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
)
from domain.events import ContainerEventType, LifecycleLedger
from domain.id_mappings import IdMapping, UserNamespace
from domain.sandbox_model import (
    NamespaceMode,
    NamespaceOptions,
    NetworkPhase,
    PodSandbox,
    SandboxConfig,
    SandboxMetadata,
    SandboxState,
)
from domain.sandboxes import STATE_KIND, SandboxFilter, SandboxService, SandboxSettings
from ports.network import DnsSettings, PortMapping
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.container_events import RecordingEventSink
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.pod_containers import FakePodContainers
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.state_store import InMemoryStateStore
from tests.fakes.systemd_units import FakeSystemdUnits


class World:
    """The service with every port faked; `service()` builds a fresh one on the same host (a restart)."""

    def __init__(self, **settings: object) -> None:
        self.store = InMemoryStateStore()
        self.network = FakeNetwork()
        self.namespaces = FakeNamespaces()
        self.infra = FakeInfraProcesses()
        self.files = FakePodFiles()
        self.cgroups = FakeCgroups()
        self.containers = FakePodContainers()
        self.events = RecordingEventSink()
        defaults: dict[str, object] = {
            "runtimes": ("runc", "crun"),
            "node_hostname": "node-1",
            "network_teardown_deadline": 1.0,
            "creation_wait": 5.0,
        }
        defaults.update(settings)
        self.settings = SandboxSettings(**defaults)  # type: ignore[arg-type]
        self.slept: list[float] = []
        self.now = 0.0
        self.svc = self.service()

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def service(self) -> SandboxService:
        return SandboxService(
            self.store,
            self.network,
            self.namespaces,
            self.infra,
            self.files,
            self.cgroups,
            self.containers,
            self.settings,
            FakeHugePages(),
            sleep=self._sleep,
            monotonic=lambda: self.now,
            events=LifecycleLedger(self.events),
        )

    def leftovers(self) -> list[object]:
        return [
            x
            for x in (
                self.network.attached,
                self.namespaces.pinned,
                self.infra.running,
                self.files.files,
                self.files.shm_mounts,
                self.store.list(STATE_KIND),
            )
            if x
        ]


USERNS = UserNamespace(uids=(IdMapping(0, 65536, 65536),), gids=(IdMapping(0, 65536, 65536),))


def pod(name: str = "web", **changes: object) -> SandboxConfig:
    config = SandboxConfig(
        metadata=SandboxMetadata(name=name, uid=f"uid-{name}", namespace="default", attempt=0),
        labels={"app": name},
        annotations={"note": "x"},
    )
    return replace(config, **changes)  # type: ignore[arg-type]


@pytest.fixture
def world() -> World:
    return World()


def test_run_makes_a_ready_pod_with_its_own_namespaces_network_and_files(world: World) -> None:
    dns = DnsSettings(servers=["10.10.10.10"], searches=["google.com"], options=["ndots:8"])
    sid = world.svc.run(pod(hostname="test-hostname", dns=dns, sysctls={"kernel.shm_rmid_forced": "1"}))
    sb = world.svc.status(sid)
    assert sb.state == SandboxState.READY
    assert len(sb.ips) == 1
    assert sb.namespaces.network and sb.namespaces.ipc and sb.namespaces.uts
    assert sb.pid_namespace == f"/proc/{sb.infra.pid}/ns/pid" if sb.infra else False
    assert world.namespaces.hostnames[sid] == "test-hostname"
    assert world.namespaces.sysctls[sid] == {"kernel.shm_rmid_forced": "1"}
    assert sb.files is not None
    resolv = world.files.read(sb.files.resolv_conf)
    assert "nameserver 10.10.10.10" in resolv
    assert "search google.com" in resolv
    assert "options ndots:8" in resolv
    assert f"{sb.ips[0]}\ttest-hostname" in world.files.read(sb.files.hosts)
    assert world.files.read(sb.files.hostname) == "test-hostname\n"
    assert sb.files.shm in world.files.shm_mounts


def test_default_hostname_is_the_short_id(world: World) -> None:
    sid = world.svc.run(pod())
    assert world.svc.status(sid).hostname == sid[:12]


def test_infra_joins_the_pod_namespaces_and_cgroup(world: World) -> None:
    sid = world.svc.run(pod(cgroup_parent="/kubepods/pod1"))
    sb = world.svc.status(sid)
    assert sb.infra is not None
    spec = world.infra.running[sb.infra.pid]
    assert (spec.network, spec.ipc, spec.uts) == (sb.namespaces.network, sb.namespaces.ipc, sb.namespaces.uts)
    assert spec.new_pid_namespace
    assert sb.cgroup_path == f"/kubepods/pod1/pycrio-{sid}"
    assert all(sb.cgroup_path in f for f in spec.cgroup_procs)
    assert world.cgroups.exists(sb.cgroup_path)


def test_host_namespaces_make_no_netns_and_no_network(world: World) -> None:
    options = NamespaceOptions(network=NamespaceMode.NODE, pid=NamespaceMode.NODE, ipc=NamespaceMode.NODE)
    sid = world.svc.run(pod(namespace_options=options))
    sb = world.svc.status(sid)
    assert sb.namespaces.network == sb.namespaces.ipc == sb.namespaces.uts == ""
    assert sb.ips == []
    assert sb.network_phase == NetworkPhase.NONE
    assert sb.hostname == "node-1"
    assert sb.pid_namespace == ""
    assert sb.files is not None and sb.files.shm == "/dev/shm"
    assert not world.network.attached


def test_pid_mode_container_gives_no_shared_pid_namespace(world: World) -> None:
    sid = world.svc.run(pod(namespace_options=NamespaceOptions(pid=NamespaceMode.CONTAINER)))
    assert world.svc.status(sid).pid_namespace == ""


def test_each_pod_gets_its_own_ip(world: World) -> None:
    ids = [world.svc.run(pod(f"p{i}")) for i in range(5)]
    ips = {world.svc.status(i).ips[0] for i in ids}
    assert len(ips) == 5


def test_same_metadata_twice_is_already_exists_naming_the_pod(world: World) -> None:
    first = world.svc.run(pod())
    with pytest.raises(AlreadyExists) as err:
        world.svc.run(pod())
    assert first in str(err.value)
    assert "k8s_POD_web_default_uid-web_0" in str(err.value)
    world.svc.run(replace(pod(), metadata=replace(pod().metadata, attempt=1)))


def test_name_is_free_again_after_remove(world: World) -> None:
    first = world.svc.run(pod())
    world.svc.stop(first)
    world.svc.remove(first)
    assert world.svc.run(pod()) != first


def test_a_pod_whose_caller_gave_up_is_rolled_back(world: World) -> None:
    with pytest.raises(DeadlineExceeded):
        world.svc.run(pod(), caller_gone=lambda: True)
    assert world.svc.list() == []
    assert world.leftovers() == []
    world.svc.run(pod())  # the name is free


@pytest.mark.parametrize("steps_before_giving_up", [1, 2, 3, 4, 5, 6])
def test_a_caller_giving_up_between_any_two_steps_leaves_nothing(
    world: World, steps_before_giving_up: int
) -> None:
    asked = []

    def gone() -> bool:
        asked.append(True)
        return len(asked) > steps_before_giving_up

    with pytest.raises(DeadlineExceeded):
        world.svc.run(pod(), caller_gone=gone)
    assert world.svc.list() == []
    assert world.leftovers() == []


def test_retry_during_creation_waits_for_the_first_call(world: World) -> None:
    entered, release = threading.Event(), threading.Event()
    original_setup = world.network.setup

    def slow_setup(request):  # type: ignore[no-untyped-def]
        entered.set()
        release.wait(5)
        return original_setup(request)

    world.network.setup = slow_setup  # type: ignore[method-assign]
    gone = threading.Event()
    results: dict[str, str] = {}
    first = threading.Thread(target=lambda: results.update(a=world.svc.run(pod(), caller_gone=gone.is_set)))
    first.start()
    assert entered.wait(5)
    gone.set()  # the kubelet timed out
    second = threading.Thread(target=lambda: results.update(b=world.svc.run(pod())))
    second.start()
    # Let the first call go on only once the retry waits for it: the retry is what keeps the pod.
    key = pod().metadata.reservation_key
    for _ in range(500):
        if world.svc._names.waiting(key):
            break
        time.sleep(0.01)
    release.set()
    first.join(5)
    second.join(5)
    assert results["a"] == results["b"]
    assert len(world.svc.list()) == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"metadata": SandboxMetadata("", "u", "ns")}, "metadata.name"),
        ({"metadata": SandboxMetadata("n", "", "ns")}, "metadata.uid"),
        ({"metadata": SandboxMetadata("n", "u", "")}, "metadata.namespace"),
        ({"sysctls": {"kernel.panic": "1"}}, "kernel.panic"),
        ({"sysctls": {"vm.swappiness": "1"}}, "vm.swappiness"),
        ({"sysctls": {"net.ipv4.no_such_knob": "1"}}, "net.ipv4.no_such_knob"),
        (
            {
                "sysctls": {"net.ipv4.ip_forward": "1"},
                "namespace_options": NamespaceOptions(network=NamespaceMode.NODE),
            },
            "host network",
        ),
        (
            {
                "sysctls": {"kernel.shmmax": "1"},
                "namespace_options": NamespaceOptions(ipc=NamespaceMode.NODE),
            },
            "host IPC",
        ),
        ({"port_mappings": [PortMapping("tcp", 0)]}, "container_port"),
        ({"port_mappings": [PortMapping("tcp", 80, 70000)]}, "host_port"),
        ({"port_mappings": [PortMapping("tcp", 80, 8080, "nope")]}, "host_ip"),
        ({"dns": DnsSettings(servers=["not-an-ip"])}, "DNS server"),
        ({"hostname": "bad host"}, "hostname"),
        ({"log_directory": "relative/logs"}, "log_directory"),
        ({"namespace_options": NamespaceOptions(pid=NamespaceMode.TARGET)}, "TARGET"),
        (
            {"user_namespace": USERNS, "namespace_options": NamespaceOptions(network=NamespaceMode.NODE)},
            "userns_options: mode POD cannot be combined with the host's",
        ),
    ],
)
def test_bad_input_is_invalid_argument_and_leaves_nothing(
    world: World, change: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument) as err:
        world.svc.run(pod(**change))  # type: ignore[arg-type]
    assert message in str(err.value)
    assert world.leftovers() == []
    assert world.svc.list() == []
    world.svc.run(pod())  # the name was not kept


def test_unknown_runtime_handler_is_invalid_argument(world: World) -> None:
    with pytest.raises(InvalidArgument, match="no-such"):
        world.svc.run(pod(), runtime_handler="no-such")
    assert world.leftovers() == []


def test_runtime_handler_is_kept(world: World) -> None:
    sid = world.svc.run(pod(), runtime_handler="crun")
    sb = world.svc.status(sid)
    assert (sb.runtime_handler, sb.oci_runtime) == ("crun", "crun")
    default = world.svc.status(world.svc.run(pod("other")))
    assert (default.runtime_handler, default.oci_runtime) == ("", "runc")


@pytest.mark.parametrize("failing", ["network", "infra"])
def test_failure_during_creation_undoes_everything(world: World, failing: str) -> None:
    if failing == "network":
        world.network.fail_setup = True
    else:
        world.infra.fail_start = True
    with pytest.raises(Internal):
        world.svc.run(pod(cgroup_parent="/kubepods/pod1"))
    assert world.leftovers() == []
    assert world.cgroups.paths == set()
    world.network.fail_setup = world.infra.fail_start = False
    world.svc.run(pod())


def test_stop_stops_containers_then_the_network_and_is_idempotent(world: World) -> None:
    sid = world.svc.run(pod())
    world.containers.add(sid, "c1")
    world.svc.stop(sid)
    assert world.containers.containers[sid] == {"c1": False}
    assert sid not in world.network.attached
    assert world.svc.status(sid).state == SandboxState.NOTREADY
    world.svc.stop(sid)
    assert world.network.teardown_calls == 1
    assert world.svc.status(sid).state == SandboxState.NOTREADY


def test_stop_and_remove_of_an_absent_pod_succeed(world: World) -> None:
    world.svc.stop("0" * 64)
    world.svc.remove("0" * 64)


def test_an_empty_id_is_invalid(world: World) -> None:
    with pytest.raises(InvalidArgument):
        world.svc.stop("")


def test_status_of_an_absent_pod_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        world.svc.status("nope")


def test_network_teardown_is_retried(world: World) -> None:
    sid = world.svc.run(pod())
    world.network.teardown_failures_left = 2
    world.svc.stop(sid)
    assert world.network.teardown_calls == 3
    assert sid not in world.network.attached
    assert world.svc.status(sid).network_phase == NetworkPhase.DETACHED


def test_a_wedged_network_does_not_block_stop_or_remove(world: World) -> None:
    sid = world.svc.run(pod())
    world.network.teardown_failures_left = 10**6
    world.svc.stop(sid)
    assert world.svc.status(sid).state == SandboxState.NOTREADY
    assert world.svc.status(sid).network_phase == NetworkPhase.ATTACHED
    assert sum(world.slept) <= world.settings.network_teardown_deadline
    world.svc.remove(sid)
    assert world.svc.list() == []
    assert world.network.teardown_calls > 2


def test_remove_releases_everything(world: World) -> None:
    sid = world.svc.run(pod(cgroup_parent="/kubepods/podA"))
    world.containers.add(sid, "c1")
    world.svc.remove(sid)  # stops it first
    assert ("stop_all", sid) in world.containers.calls
    assert sid not in world.containers.containers
    assert world.leftovers() == []
    assert world.cgroups.paths == set()
    world.svc.remove(sid)


def test_remove_keeps_a_cgroup_parent_it_did_not_create(world: World) -> None:
    world.cgroups.create("/kubepods/podB")
    sid = world.svc.run(pod(cgroup_parent="/kubepods/podB"))
    world.svc.remove(sid)
    assert world.cgroups.exists("/kubepods/podB")
    assert not world.cgroups.exists(f"/kubepods/podB/pycrio-{sid}")


KUBELET_HIERARCHIES = ("cpu,cpuacct", "memory", "pids")  # not name=systemd


def test_remove_keeps_a_kubelet_tree_made_in_some_hierarchies_only(world: World) -> None:
    kubelet = "/kubepods/burstable/podD"
    world.cgroups.make(kubelet, KUBELET_HIERARCHIES)
    kubelets = {h: set(world.cgroups.trees[h]) for h in KUBELET_HIERARCHIES}
    sid = world.svc.run(pod(cgroup_parent=kubelet))
    sb = world.svc.status(sid)
    # In name=systemd pycrio made the whole path; elsewhere only the infra cgroup.
    assert sb.cgroup_dirs == {
        **{h: [sb.cgroup_path] for h in KUBELET_HIERARCHIES},
        "name=systemd": ["/kubepods", "/kubepods/burstable", kubelet, sb.cgroup_path],
    }
    world.svc.update_resources(sid, Resources(), Resources(cpu_shares=900, memory_limit_in_bytes=64 << 20))
    assert world.cgroups.limits == {}  # the kubelet's pod cgroup: only recorded
    world.svc.remove(sid)
    assert {h: world.cgroups.trees[h] for h in KUBELET_HIERARCHIES} == kubelets
    assert world.cgroups.trees["name=systemd"] == set()


def test_what_pycrio_will_own_is_recorded_before_it_makes_it(world: World) -> None:
    world.cgroups.make("/kubepods", KUBELET_HIERARCHIES)
    seen: list[dict[str, list[str]]] = []
    create = world.cgroups.create

    def recording_create(path: str) -> dict[str, tuple[str, ...]]:
        (doc,) = world.store.list(STATE_KIND).values()
        seen.append(doc["cgroup_dirs"])
        return create(path)

    world.cgroups.create = recording_create  # type: ignore[method-assign]
    sid = world.svc.run(pod(cgroup_parent="/kubepods/podE"))
    infra = world.svc.status(sid).cgroup_path
    assert seen == [
        {
            **{h: ["/kubepods/podE", infra] for h in KUBELET_HIERARCHIES},
            "name=systemd": ["/kubepods", "/kubepods/podE", infra],
        }
    ]


def test_a_parent_pycrio_made_is_removed_by_the_last_pod_under_it(world: World) -> None:
    first = world.svc.run(pod("first", cgroup_parent="/made/by/pycrio"))
    second = world.svc.run(pod("second", cgroup_parent="/made/by/pycrio"))
    world.svc.remove(first)
    assert world.cgroups.exists("/made/by/pycrio")
    world.svc.remove(second)
    assert world.cgroups.paths == set()


def test_a_parent_another_pod_made_while_this_one_was_created_is_shared(world: World) -> None:
    create = world.cgroups.create
    raced: list[str] = []

    def racing_create(path: str) -> dict[str, tuple[str, ...]]:
        if not raced:  # the first pod's mkdir comes after the second pod made the parent
            raced.append("")
            raced[0] = world.svc.run(pod("second", cgroup_parent="/race/parent"))
        return create(path)

    world.cgroups.create = racing_create  # type: ignore[method-assign]
    first = world.svc.run(pod("first", cgroup_parent="/race/parent"))
    assert "/race/parent" in world.svc.status(first).cgroup_dirs["memory"]
    world.svc.remove(raced[0])
    world.svc.remove(first)
    assert world.cgroups.paths == set()


def test_a_record_from_before_per_hierarchy_ownership_removes_only_the_infra_cgroup(world: World) -> None:
    world.cgroups.make("/kubepods/podF", KUBELET_HIERARCHIES)
    sid = world.svc.run(pod(cgroup_parent="/kubepods/podF"))
    infra = world.svc.status(sid).cgroup_path
    doc = dict(world.store.get(STATE_KIND, sid) or {})
    del doc["cgroup_dirs"]
    world.store.put(STATE_KIND, sid, {**doc, "cgroup_created_from": "/kubepods", "cgroups_created": True})
    restarted = world.service()
    restarted.update_resources(sid, Resources(), Resources(cpu_shares=900))
    restarted.remove(sid)
    assert world.cgroups.limits == {}
    assert infra not in world.cgroups.paths
    assert world.cgroups.trees["name=systemd"] == {"/kubepods", "/kubepods/podF"}  # left, not known as ours
    assert all("/kubepods/podF" in world.cgroups.trees[h] for h in KUBELET_HIERARCHIES)


def test_a_busy_cgroup_fails_remove_and_a_retry_finishes_it(world: World) -> None:
    sid = world.svc.run(pod(cgroup_parent="/kubepods/podC"))
    busy = world.svc.status(sid).cgroup_path
    world.cgroups.busy.add(busy)
    with pytest.raises(Internal):
        world.svc.remove(sid)
    world.cgroups.busy.clear()
    world.svc.remove(sid)
    assert world.svc.list() == []


def test_the_pods_infra_container_is_reported_once_per_change(world: World) -> None:
    pod_id = world.svc.run(pod())
    world.svc.stop(pod_id)
    world.svc.stop(pod_id)
    world.svc.remove(pod_id)
    world.svc.remove(pod_id)
    kinds = [ContainerEventType.CREATED, ContainerEventType.STARTED]
    kinds += [ContainerEventType.STOPPED, ContainerEventType.DELETED]
    assert world.events.events == [(pod_id, pod_id, k) for k in kinds]


def test_an_infra_death_is_reported_stopped_once_and_a_restart_reports_nothing_twice(world: World) -> None:
    """The death is reported when first seen (an evented kubelet waits for it), not again by the stop."""
    pod_id = world.svc.run(pod())
    other = world.svc.run(pod("other"))
    infra = world.svc.status(pod_id).infra
    assert infra is not None
    world.infra.kill(infra)
    world.svc.list_version()
    kinds = [(cid, k) for cid, _, k in world.events.events]
    assert kinds[4:] == [(pod_id, ContainerEventType.STOPPED)]
    world.svc.stop(pod_id)
    restarted = world.service()
    restarted.stop(other)
    kinds = [(cid, k) for cid, _, k in world.events.events]
    assert kinds[4:] == [(pod_id, ContainerEventType.STOPPED), (other, ContainerEventType.STOPPED)]


def test_status_is_notready_when_the_infra_process_died(world: World) -> None:
    sid = world.svc.run(pod())
    infra = world.svc.status(sid).infra
    assert infra is not None
    world.infra.kill(infra)
    assert world.svc.status(sid).state == SandboxState.NOTREADY


def test_list_filters_by_id_prefix_state_and_labels(world: World) -> None:
    a = world.svc.run(pod("a"))
    b = world.svc.run(pod("b"))
    world.svc.stop(b)
    assert [s.id for s in world.svc.list()] == [a, b]
    assert [s.id for s in world.svc.list(SandboxFilter(id=a[:8]))] == [a]
    assert [s.id for s in world.svc.list(SandboxFilter(state=SandboxState.NOTREADY))] == [b]
    assert [s.id for s in world.svc.list(SandboxFilter(labels={"app": "a"}))] == [a]
    assert world.svc.list(SandboxFilter(labels={"app": "a", "x": "y"})) == []
    assert world.svc.list(SandboxFilter(id="zzz")) == []
    assert world.svc.status(a[:10]).id == a


def test_an_ambiguous_prefix_lists_nothing_and_is_refused_by_stop_remove_and_status(world: World) -> None:
    ids = [world.svc.run(pod(f"p{i}")) for i in range(40)]
    shared = next((x[0] for x in ids if sum(y[0] == x[0] for y in ids) > 1), None)
    assert shared is not None
    assert world.svc.list(SandboxFilter(id=shared)) == []
    for action in (world.svc.stop, world.svc.remove, world.svc.status):
        with pytest.raises(InvalidArgument, match="matches several pod sandboxes"):
            action(shared)
    assert {s.state for s in world.svc.list()} == {SandboxState.READY}
    assert len(world.svc.list()) == 40


def test_a_restarted_service_lists_stops_and_removes_its_pods(world: World) -> None:
    ready = world.svc.run(pod("ready"))
    stopped = world.svc.run(pod("stopped"))
    world.svc.stop(stopped)
    restarted = world.service()
    assert {s.id: s.state for s in restarted.list()} == {
        ready: SandboxState.READY,
        stopped: SandboxState.NOTREADY,
    }
    with pytest.raises(AlreadyExists):
        restarted.run(pod("ready"))
    restarted.stop(ready)
    restarted.remove(ready)
    restarted.remove(stopped)
    assert world.leftovers() == []


def _reboot(world: World, boot_id: str) -> SandboxService:
    """What a reboot leaves the fakes: no namespaces and no infra pid files any more, but every infra pid
    still reads alive, as a process of the new boot with the same pid would. The service starts in boot
    `boot_id`."""
    world.namespaces.pinned.clear()
    for pid, spec in list(world.infra.running.items()):
        world.infra.running[pid] = replace(spec, sandbox_id=f"a process of {boot_id}")
    world.settings = replace(world.settings, boot_id=boot_id)
    return world.service()


def test_a_pod_of_an_earlier_boot_is_notready_at_start_its_address_released_and_its_pid_never_used() -> None:
    world = World(boot_id="boot-1")
    ready = world.svc.run(pod("ready"))
    stopped = world.svc.run(pod("stopped"))
    world.svc.stop(stopped)
    reused = set(world.infra.running)  # the ready pod's pid, "reused" by the new boot
    assert {doc["boot_id"] for doc in world.store.list(STATE_KIND).values()} == {"boot-1"}
    restarted = _reboot(world, "boot-2")
    assert {s.id: s.state for s in restarted.list()} == {
        ready: SandboxState.NOTREADY,
        stopped: SandboxState.NOTREADY,
    }
    assert world.network.attached == {}  # released at start-up, without the namespace that is gone
    assert world.network.teardown_netns[-1] == ""
    assert restarted.status(ready).infra is None
    restarted.stop(ready)
    restarted.remove(ready)
    restarted.remove(stopped)
    assert set(world.infra.running) == reused  # never signalled
    assert world.store.list(STATE_KIND) == {}


def test_a_del_that_fails_at_start_after_a_reboot_leaves_it_and_the_rest_to_stop() -> None:
    world = World(boot_id="boot-1")
    pods = [world.svc.run(pod(name)) for name in ("a", "b", "c")]
    world.network.teardown_failures_left = 1
    restarted = _reboot(world, "boot-2")
    # One DEL, once: a plugin that is not ready does not hold the start for a deadline per pod.
    assert (world.network.teardown_calls, world.slept) == (1, [])
    assert set(world.network.attached) == set(pods)
    for sandbox_id in pods:
        restarted.stop(sandbox_id)
    assert world.network.attached == {}
    # Settled once: a second start in the same boot changes nothing.
    assert {s.id: s.state for s in _reboot(world, "boot-2").list()} == dict.fromkeys(
        pods, SandboxState.NOTREADY
    )
    assert world.network.teardown_calls == 4


def test_pods_of_this_boot_or_recorded_without_a_boot_id_are_restored_as_before() -> None:
    world = World(boot_id="boot-1")
    same = world.svc.run(pod("same"))
    legacy = world.svc.run(pod("legacy"))
    doc = world.store.list(STATE_KIND)[legacy]
    del doc["boot_id"]
    world.store.put(STATE_KIND, legacy, doc)
    world.settings = replace(world.settings, boot_id="boot-1")
    restarted = world.service()
    assert {s.id: s.state for s in restarted.list()} == {same: SandboxState.READY, legacy: SandboxState.READY}
    assert len(world.network.attached) == 2


def test_a_del_after_the_namespace_pin_went_is_made_without_it(world: World) -> None:
    sandbox_id = world.svc.run(pod())
    world.namespaces.pinned.clear()  # unmounted behind pycrio's back
    world.svc.stop(sandbox_id)
    assert world.network.teardown_netns == [""]
    assert world.network.attached == {}


class Crash(BaseException):
    """The daemon was killed here."""


class CrashingService(SandboxService):
    def _roll_back(self, sb: PodSandbox) -> None:
        raise Crash  # a killed daemon rolls nothing back


def _crash_after(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any) -> Any:
        original(*args)
        raise Crash

    return wrapped


@pytest.mark.parametrize("crash_point", ["after_infra_start", "during_add", "after_add"])
def test_a_crash_during_creation_is_rolled_back_on_restart(
    world: World, crash_point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashing = CrashingService(
        world.store,
        world.network,
        world.namespaces,
        world.infra,
        world.files,
        world.cgroups,
        world.containers,
        world.settings,
        FakeHugePages(),
    )
    target = {"after_infra_start": (world.infra, "start"), "during_add": (world.network, "setup")}
    if crash_point in target:
        owner, method = target[crash_point]
        monkeypatch.setattr(owner, method, _crash_after(getattr(owner, method)))
    else:
        monkeypatch.setattr(world.files, "write", _crash_after(lambda *args: None))
    with pytest.raises(Crash):
        crashing.run(pod(cgroup_parent="/kubepods/crashed"))
    (doc,) = world.store.list(STATE_KIND).values()
    assert doc["state"] == "CREATING"
    monkeypatch.undo()
    restarted = world.service()
    assert restarted.list() == []
    assert world.leftovers() == []
    assert world.cgroups.paths == set()
    restarted.run(pod())


def test_systemd_driver_names_the_infra_scope_under_the_expanded_slice() -> None:
    world = World(cgroup_driver="systemd")
    sid = world.svc.run(pod(cgroup_parent="kubepods-burstable-pod123.slice"))
    sb = world.svc.status(sid)
    assert sb.cgroup_parent == "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod123.slice"
    assert sb.cgroup_path == f"{sb.cgroup_parent}/pycrio-{sid}.scope"
    with pytest.raises(InvalidArgument, match="slice"):
        world.svc.run(pod("x", cgroup_parent="/kubepods/pod1"))


def test_systemd_driver_makes_the_pod_slice_and_an_infra_scope_and_stops_both(tmp_path: Path) -> None:
    world = World(cgroup_driver="systemd")
    units = FakeSystemdUnits()
    cgroups = SystemdCgroups(units, root=tmp_path)  # an empty tree: no slice exists yet
    svc = SandboxService(
        world.store, world.network, world.namespaces, world.infra, world.files, cgroups, world.containers,
        world.settings, FakeHugePages(),
    )  # fmt: skip
    sid = svc.run(pod(cgroup_parent="kubepods-burstable-pod123.slice"))
    infra = svc.status(sid).infra
    assert infra is not None
    scope = units.units[f"pycrio-{sid}.scope"]
    assert (scope.slice, scope.pids, scope.properties["Delegate"]) == (
        "kubepods-burstable-pod123.slice",
        [infra.pid],
        True,
    )
    assert "kubepods-burstable-pod123.slice" in units.units
    svc.remove(sid)
    assert units.units == {}


def test_overhead_and_resources_are_recorded_and_survive_restart(world: World) -> None:
    sid = world.svc.run(
        pod(
            overhead=Resources(cpu_shares=10),
            resources=Resources(memory_limit_in_bytes=1 << 20, cpu_quota=5000),
        )
    )
    restored = world.service().status(sid)
    assert restored.config.overhead == Resources(cpu_shares=10)
    assert restored.config.resources.memory_limit_in_bytes == 1 << 20


def test_twenty_pods_in_parallel_get_distinct_ips(world: World) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        sid = world.svc.run(pod(f"par{i}"))
        with lock:
            ids.append(sid)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len({world.svc.status(i).ips[0] for i in ids}) == 20


def test_each_teardown_attempt_gets_only_the_time_left(world: World) -> None:
    sid = world.svc.run(pod())
    world.network.teardown_failures_left = 2
    world.svc.stop(sid)
    timeouts = world.network.teardown_timeouts
    assert len(timeouts) == 3
    assert all(t is not None and t <= world.settings.network_teardown_deadline for t in timeouts)
    assert timeouts == sorted(timeouts, reverse=True)  # type: ignore[type-var]


def test_the_log_directory_is_made(world: World) -> None:
    world.svc.run(pod(log_directory="/var/log/pods/default_web_uid-web"))
    assert world.files.log_directories == {"/var/log/pods/default_web_uid-web"}


def test_an_unreadable_record_is_left_alone_and_the_rest_restored(world: World) -> None:
    good = world.svc.run(pod("good"))
    world.store.put(STATE_KIND, "broken", {"id": "broken", "state": "READY"})
    restarted = world.service()
    assert [s.id for s in restarted.list()] == [good]
    assert world.store.get(STATE_KIND, "broken") is not None


def test_a_user_namespaced_pod_makes_its_namespaces_in_it_and_owns_its_files() -> None:
    world = World(userns_refusals={"runc": "runc 1.1 lists no idmap mount option"})
    sid = world.svc.run(pod(user_namespace=USERNS), runtime_handler="crun")
    assert world.namespaces.requests[sid].user_namespace == USERNS
    sb = world.svc.status(sid)
    assert sb.namespaces.user.endswith(f"/{sid}/ns/user")
    (infra,) = world.infra.running.values()
    assert infra.user == sb.namespaces.user
    assert world.files.contents[sid].owner == (65536, 65536)
    again = world.service().status(sid)  # the mappings survive a restart
    assert again.config.user_namespace == USERNS


def test_a_handler_that_cannot_idmap_refuses_user_namespaced_pods_with_its_reason() -> None:
    world = World(userns_refusals={"runc": "runc 1.1 lists no idmap mount option"})
    with pytest.raises(FailedPrecondition, match=r"runtime handler 'runc' cannot .*no idmap mount option"):
        world.svc.run(pod(user_namespace=USERNS))
    assert world.leftovers() == []
    world.svc.run(pod())  # without a user namespace it runs

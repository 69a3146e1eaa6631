"""The container service against fakes: lifecycle, names, failures that leave nothing, restarts."""

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from domain.capabilities import capabilities_from_mask
from domain.container_config import (
    ContainerConfig,
    HugepageLimit,
    ImageConfig,
    Mount,
    NamespaceMode,
    NamespaceOptions,
    Resources,
    SandboxFacts,
    SecurityContext,
)
from domain.containers import (
    REASON_COMPLETED,
    REASON_ERROR,
    REASON_OOM_KILLED,
    ContainerFilter,
    ContainerService,
    ContainerState,
    RuntimeHandler,
)
from domain.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from domain.events import ContainerEventType, LifecycleLedger
from domain.id_mappings import IdMapping, UserNamespace
from domain.oci_spec import HostFacts
from ports.layer_store import LayerIdmap
from ports.streaming import ProcessStreams
from tests.fakes.bundles import InMemoryBundles
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.container_events import RecordingEventSink
from tests.fakes.container_monitor import FakeContainerMonitor
from tests.fakes.container_rootfs import FakeContainerRootfs, FakeImage
from tests.fakes.host_files import FakeHostFiles
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.oci_runtime import FakeOciRuntime
from tests.fakes.sandbox_lookup import FakeSandboxLookup
from tests.fakes.state_store import InMemoryStateStore
from tests.fakes.streaming import CollectedOutput

HOST = HostFacts(bounding_capabilities=capabilities_from_mask(0x1FFFEFFFFFF), min_oom_score_adj=0)
PASSWD = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def now_ns(self) -> int:
        return int(self.now * 1_000_000_000)


@dataclasses.dataclass
class World:
    service: ContainerService
    store: InMemoryStateStore
    sandboxes: FakeSandboxLookup
    rootfs: FakeContainerRootfs
    bundles: InMemoryBundles
    runtime: FakeOciRuntime
    monitor: FakeContainerMonitor
    clock: FakeClock
    sandbox: SandboxFacts
    events: RecordingEventSink = dataclasses.field(default_factory=RecordingEventSink)
    hugepages: FakeHugePages = dataclasses.field(default_factory=FakeHugePages)
    host_files: FakeHostFiles = dataclasses.field(
        default_factory=lambda: FakeHostFiles(paths={"/data": "/data"})
    )

    def restarted(self) -> ContainerService:
        """A new service over the same store and host (a daemon restart)."""
        service = make_service(self)
        service.restore()
        return service


def make_service(
    world: "World", host_files: FakeHostFiles | None = None, host: HostFacts = HOST, **extensions: Any
) -> ContainerService:
    return ContainerService(
        store=world.store,
        sandboxes=world.sandboxes,
        rootfs=world.rootfs,
        host_files=host_files or world.host_files,
        bundles=world.bundles,
        monitor=world.monitor,
        runtimes={"runc": RuntimeHandler(world.runtime)},
        default_runtime="runc",
        host=host,
        hugepages=world.hugepages,
        now_ns=world.clock.now_ns,
        sleep=world.clock.sleep,
        monotonic=world.clock.monotonic,
        events=LifecycleLedger(world.events),
        **extensions,
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    bundles = InMemoryBundles()
    runtime = FakeOciRuntime(read_spec=bundles.read)
    sandboxes = FakeSandboxLookup()
    sandbox = sandboxes.add(
        SandboxFacts(
            id="sb1",
            name="pod",
            namespace="ns",
            uid="uid1",
            netns_path="/run/netns/x",
            ipc_ns_path="/proc/1/ns/ipc",
            log_directory=str(tmp_path / "logs"),
        )
    )
    rootfs = FakeContainerRootfs()
    rootfs.add_image(
        FakeImage("img1", ("busybox:latest",), ImageConfig(cmd=("/bin/sh",)), {"/etc/passwd": PASSWD})
    )
    world = World(None, InMemoryStateStore(), sandboxes, rootfs, bundles, runtime,  # type: ignore[arg-type]
                  FakeContainerMonitor(runtime), FakeClock(), sandbox)  # fmt: skip
    world.service = make_service(world)
    return world


def config(script: str = "sleep 1000", name: str = "ctr", **fields: object) -> ContainerConfig:
    values: dict[str, object] = {
        "name": name,
        "image": "busybox:latest",
        "command": ("/bin/sh", "-c", script),
        "log_path": f"{name}/0.log",
    }
    values.update(fields)
    return ContainerConfig(**values)  # type: ignore[arg-type]


def test_create_start_exit_completed(world: World) -> None:
    service = world.service
    cid = service.create("sb1", config("echo hi; exit 0"))
    created = service.status(cid)
    assert created.state is ContainerState.CREATED and created.created_at > 0
    assert created.image_ref == "busybox:latest@sha256:img1" and created.image_id == "img1"
    world.clock.sleep(1)
    service.start(cid)
    status = service.status(cid)
    assert status.state is ContainerState.EXITED
    assert (status.exit_code, status.reason) == (0, REASON_COMPLETED)
    assert status.started_at >= status.created_at
    assert status.finished_at > 0
    assert b"stdout F hi" in Path(status.log_path).read_bytes()
    assert status.log_path == str(Path(world.sandbox.log_directory) / "ctr/0.log")


def test_each_change_is_reported_once_in_order(world: World) -> None:
    cid = world.service.create("sb1", config("exit 0"))
    assert world.service.create("sb1", config("exit 0")) == cid  # a retry: no second CREATED
    world.service.start(cid)  # exits at once: STOPPED follows STARTED
    world.service.status(cid)
    world.service.list_containers()
    world.service.remove(cid)
    world.service.remove(cid)  # already gone: nothing more
    created, started, stopped, deleted = (
        ContainerEventType.CREATED,
        ContainerEventType.STARTED,
        ContainerEventType.STOPPED,
        ContainerEventType.DELETED,
    )
    assert world.events.events == [(cid, "sb1", k) for k in (created, started, stopped, deleted)]


def test_a_restart_does_not_report_again_what_was_reported(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    before = len(world.events.events)
    restarted = world.restarted()
    restarted.stop(cid, timeout=0)
    assert world.events.kinds(cid)[before:] == [ContainerEventType.STOPPED]


def _streams(tty: bool = False) -> tuple[ProcessStreams, CollectedOutput, CollectedOutput, threading.Event]:
    out, err, cancelled = CollectedOutput(), CollectedOutput(), threading.Event()
    return ProcessStreams(None, out, None if tty else err, tty, None, cancelled), out, err, cancelled


def test_streaming_exec_runs_through_the_runtime_and_attach_through_the_monitor(world: World) -> None:
    cid = world.service.create("sb1", config())
    streams, out, err, _ = _streams()
    with pytest.raises(FailedPrecondition, match="not RUNNING"):
        world.service.exec(cid, ["sh", "-c", "echo o"], streams)
    world.service.start(cid)
    code = world.service.exec(cid[:12], ["sh", "-c", "echo o; echo e >&2; exit 4"], streams)
    assert (code, out.data, err.data) == (4, b"o\n", b"e\n")
    streams, _, _, cancelled = _streams()
    attached = threading.Thread(target=world.service.attach, args=(cid, streams))
    attached.start()
    world.service.stop(cid, timeout=0)  # the attach ends with the container
    attached.join(30)
    assert not attached.is_alive() and not cancelled.is_set()


def test_exit_code_error_and_oom(world: World) -> None:
    cid = world.service.create("sb1", config("exit 3"))
    world.service.start(cid)
    assert (world.service.status(cid).exit_code, world.service.status(cid).reason) == (3, REASON_ERROR)
    limit = Resources(memory_limit_in_bytes=16 << 20)
    oom = world.service.create("sb1", config("tail /dev/zero", name="hog", resources=limit))
    world.service.start(oom)
    status = world.service.status(oom)
    assert (status.exit_code, status.reason) == (137, REASON_OOM_KILLED)


def test_spec_is_built_from_config_image_and_sandbox(world: World) -> None:
    cfg = config(security=SecurityContext(run_as_username="app", readonly_rootfs=True))
    cid = world.service.create("sb1", cfg)
    spec = world.bundles.read(world.bundles.path(cid))
    assert spec["process"]["user"]["uid"] == 1000
    assert spec["root"] == {"path": f"/fake-rootfs/{cid}/merged", "readonly": True}
    assert {"type": "network", "path": "/run/netns/x"} in spec["linux"]["namespaces"]


def test_name_reserved_and_retry_returns_the_same_container(world: World) -> None:
    first = world.service.create("sb1", config())
    assert world.service.create("sb1", config()) == first
    with pytest.raises(AlreadyExists, match="reserved"):
        world.service.create("sb1", config("sleep 2000"))
    assert len(world.service.list_containers()) == 1


def test_bad_field_leaves_nothing_behind(world: World) -> None:
    with pytest.raises(InvalidArgument, match=r"run_as_username: user 'ghost'"):
        world.service.create("sb1", config(security=SecurityContext(run_as_username="ghost")))
    assert_nothing_left(world)
    world.service.create("sb1", config())  # the name is free again


def test_missing_bind_source_is_invalid(world: World) -> None:
    from domain.container_config import Mount

    with pytest.raises(InvalidArgument, match="does not exist"):
        world.service.create("sb1", config(mounts=(Mount("/in", "/nope"),)))
    assert_nothing_left(world)
    cid = world.service.create("sb1", config(mounts=(Mount("/in", "/data"),)))
    assert any(m["destination"] == "/in" for m in world.bundles.read(world.bundles.path(cid))["mounts"])


def test_monitor_failure_is_undone(world: World) -> None:
    world.monitor.create_delay_exceeded = True
    with pytest.raises(DeadlineExceeded):
        world.service.create("sb1", config())
    assert_nothing_left(world)
    world.rootfs.fail_create = True
    with pytest.raises(Internal):
        world.service.create("sb1", config())
    assert_nothing_left(world)


def assert_nothing_left(world: World) -> None:
    assert world.store.list("containers") == {}
    assert world.rootfs.rootfs == {}
    assert world.bundles.specs == {}
    assert world.runtime.machine.containers == {}
    assert world.service.list_containers() == []


def test_unknown_sandbox_image_and_container(world: World) -> None:
    with pytest.raises(NotFound):
        world.service.create("nope", config())
    with pytest.raises(NotFound):
        world.service.create("sb1", config(image="ghost:1"))
    with pytest.raises(NotFound):
        world.service.start("nope")
    with pytest.raises(NotFound):
        world.service.status("nope")
    with pytest.raises(InvalidArgument):
        world.service.create("sb1", config(name=""))


def test_image_volume_mounts_the_image_read_only_and_goes_with_the_container(world: World) -> None:
    world.rootfs.add_image(FakeImage("data1", ("data:1",), files={"/etc/app/conf": "x", "/bin/tool": "y"}))
    volume = Mount("/mnt/data", "", readonly=True, image="data:1")
    sub = Mount("/mnt/conf", "", readonly=True, image="data:1", image_sub_path="etc/app")
    cid = world.service.create("sb1", config(mounts=(volume, sub)))
    mounts = {m["destination"]: m for m in world.bundles.read(world.bundles.path(cid))["mounts"]}
    assert mounts["/mnt/data"]["source"] == f"/fake-rootfs/{cid}-image-volume-0/merged"
    assert mounts["/mnt/conf"]["source"] == f"/fake-rootfs/{cid}-image-volume-1/merged/etc/app"
    assert "ro" in mounts["/mnt/data"]["options"] and "noexec" not in mounts["/mnt/data"]["options"]
    assert world.service.status(cid).image_volume_ids == ["data1", "data1"]
    assert world.restarted().status(cid).image_volume_ids == ["data1", "data1"]
    world.service.remove(cid)
    assert_nothing_left(world)


def test_bad_image_volumes_are_refused_and_leave_nothing(world: World) -> None:
    world.rootfs.add_image(FakeImage("data1", ("data:1",), files={"/etc/app/conf": "x"}))
    for mount, error in (
        (Mount("/m", "", readonly=False, image="data:1"), InvalidArgument),
        (Mount("/m", "", readonly=True, image="data:1", image_sub_path="nope"), InvalidArgument),
        (Mount("/m", "", readonly=True, image="data:1", image_sub_path="etc/app/conf"), InvalidArgument),
        (Mount("/m", "", readonly=True, image="data:1", image_sub_path="../etc"), InvalidArgument),
        (Mount("/m", "", readonly=True, image="ghost:1"), NotFound),
    ):
        with pytest.raises(error):
            world.service.create("sb1", config(mounts=(mount,)))
        assert_nothing_left(world)


def test_stopping_an_unknown_container_is_not_an_error(world: World) -> None:
    world.service.stop("never-existed", timeout=10)
    cid = world.service.create("sb1", config())
    world.service.remove(cid)
    world.service.stop(cid, timeout=0)
    assert_nothing_left(world)


def test_start_twice_is_a_failed_precondition(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    with pytest.raises(FailedPrecondition):
        world.service.start(cid)


def test_stop_escalates_to_sigkill_after_the_timeout(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    before = world.clock.now
    world.service.stop(cid, timeout=10)
    status = world.service.status(cid)
    assert status.state is ContainerState.EXITED and status.exit_code == 137
    assert world.clock.now - before >= 10  # the stop signal was given its full grace period
    world.service.stop(cid, timeout=10)  # idempotent


def test_stop_without_timeout_kills_at_once(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    before = world.clock.now
    world.service.stop(cid, timeout=0)
    assert world.service.status(cid).exit_code == 137
    assert world.clock.now - before < 1


def test_remove_running_container_cleans_everything(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.service.remove(cid)
    assert_nothing_left(world)
    world.service.remove(cid)  # idempotent


def test_list_filters(world: World) -> None:
    a = world.service.create("sb1", config(name="a", labels={"app": "x"}))
    b = world.service.create("sb1", config(name="b", labels={"app": "y"}))
    world.sandboxes.add(dataclasses.replace(world.sandbox, id="sb2", name="pod2"))
    c = world.service.create("sb2", config(name="c", labels={"app": "x"}))
    world.service.start(b)

    def ids(**kw: object) -> set[str]:
        return {x.id for x in world.service.list_containers(ContainerFilter(**kw))}  # type: ignore[arg-type]

    assert ids() == {a, b, c}
    assert ids(id=a[:8]) == {a}
    assert ids(state=ContainerState.RUNNING) == {b}
    assert ids(sandbox_id="sb2") == {c}
    assert ids(labels={"app": "x"}) == {a, c}
    assert ids(labels={"app": "x"}, sandbox_id="sb1") == {a}
    assert world.service.status(a[:10]).id == a


def test_exec_sync(world: World) -> None:
    cid = world.service.create("sb1", config())
    with pytest.raises(FailedPrecondition):
        world.service.exec_sync(cid, ["echo", "x"], 5)
    world.service.start(cid)
    result = world.service.exec_sync(cid, ["/bin/sh", "-c", "echo out; echo err >&2; exit 2"], 5)
    assert (result.exit_code, result.stdout, result.stderr) == (2, b"out\n", b"err\n")
    assert world.service.exec_sync(cid, ["sleep", "100"], 1).timed_out
    with pytest.raises(InvalidArgument):
        world.service.exec_sync(cid, [], 1)
    with pytest.raises(InvalidArgument, match=r"cmd\[0\]"):
        world.service.exec_sync(cid, ["", "x"], 1)


def test_update_resources(world: World) -> None:
    cid = world.service.create("sb1", config(resources=Resources(memory_limit_in_bytes=64 << 20)))
    world.service.start(cid)
    world.service.update_resources(cid, Resources(memory_limit_in_bytes=128 << 20, cpu_shares=512))
    assert world.runtime.machine.containers[cid].resources["memory"]["limit"] == 128 << 20
    assert world.service.status(cid).resources.cpu_shares == 512
    with pytest.raises(InvalidArgument, match="memory_limit_in_bytes"):
        world.service.update_resources(cid, Resources(memory_limit_in_bytes=5))
    assert world.service.status(cid).resources.memory_limit_in_bytes == 128 << 20


KUBELET_HUGEPAGES = (HugepageLimit("2MB", 0), HugepageLimit("1GB", 0))  # every size the node has, limit 0


@pytest.mark.parametrize(
    ("controller", "sizes", "kept"),
    [
        (False, {"2MB", "1GB"}, []),  # a v1 hybrid host: hugetlb only in the cgroup2 tree
        (True, {"2MB"}, [{"pageSize": "2MB", "limit": 0}]),  # no 1GB pages in this kernel
        (True, {"2MB", "1GB"}, [{"pageSize": "2MB", "limit": 0}, {"pageSize": "1GB", "limit": 0}]),
    ],
)
def test_hugepage_limits_reach_the_runtime_only_where_it_can_set_them(
    world: World, controller: bool, sizes: set[str], kept: list[dict[str, object]]
) -> None:
    world.hugepages = FakeHugePages(controller, frozenset(sizes))
    service = world.restarted()
    cid = service.create("sb1", config(resources=Resources(hugepage_limits=KUBELET_HUGEPAGES)))
    assert world.bundles.read(world.bundles.path(cid))["linux"]["resources"].get("hugepageLimits", []) == kept
    service.start(cid)
    service.update_resources(
        cid, Resources(memory_limit_in_bytes=64 << 20, hugepage_limits=KUBELET_HUGEPAGES)
    )
    assert world.runtime.machine.containers[cid].resources.get("hugepageLimits", []) == kept
    assert service.status(cid).resources.hugepage_limits == KUBELET_HUGEPAGES  # what was asked is reported
    with pytest.raises(InvalidArgument, match="page_size"):
        service.update_resources(cid, Resources(hugepage_limits=(HugepageLimit("2M", 0),)))


def test_update_resources_failure_restores_the_old_limits(world: World) -> None:
    cid = world.service.create("sb1", config(resources=Resources(memory_limit_in_bytes=64 << 20)))
    world.service.start(cid)
    original_update = world.runtime.update
    calls: list[dict[str, object]] = []

    def failing_update(container_id: str, resources: dict[str, object]) -> None:
        calls.append(resources)
        original_update(container_id, resources)
        if len(calls) == 1:
            raise Internal("runc update: cpu controller refused")

    world.runtime.update = failing_update  # type: ignore[assignment,method-assign]
    with pytest.raises(Internal):
        world.service.update_resources(cid, Resources(memory_limit_in_bytes=256 << 20))
    assert world.runtime.machine.containers[cid].resources["memory"]["limit"] == 64 << 20
    assert world.service.status(cid).resources.memory_limit_in_bytes == 64 << 20


def test_reopen_log(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    log = Path(world.service.status(cid).log_path)
    log.unlink()
    world.service.reopen_log(cid)
    assert log.exists()
    world.service.stop(cid, 0)
    with pytest.raises(FailedPrecondition):
        world.service.reopen_log(cid)


def test_target_pid_namespace(world: World) -> None:
    target = world.service.create("sb1", config(name="target"))
    world.service.start(target)
    pid = world.service.status(target).pid
    options = NamespaceOptions(pid=NamespaceMode.TARGET, target_id=target)
    cid = world.service.create(
        "sb1", config(name="debug", security=SecurityContext(namespace_options=options))
    )
    spec = world.bundles.read(world.bundles.path(cid))
    assert {"type": "pid", "path": f"/proc/{pid}/ns/pid"} in spec["linux"]["namespaces"]


def test_restore_after_restart(world: World) -> None:
    running = world.service.create("sb1", config(name="running"))
    world.service.start(running)
    exits_meanwhile = world.service.create("sb1", config(name="exits"))
    world.service.start(exits_meanwhile)
    created = world.service.create("sb1", config(name="created"))
    lost = world.service.create("sb1", config(name="lost"))
    world.service.start(lost)
    # While "down": one exits, one vanishes from the runtime with no exit record.
    world.runtime.kill(exits_meanwhile, 9)
    world.runtime.machine.containers.pop(lost)
    world.monitor._alive.discard(lost)

    service = world.restarted()
    assert service.status(running).state is ContainerState.RUNNING
    assert service.status(created).state is ContainerState.CREATED
    exited = service.status(exits_meanwhile)
    assert (exited.state, exited.exit_code) == (ContainerState.EXITED, 137)
    assert service.status(lost).state is ContainerState.UNKNOWN
    with pytest.raises(AlreadyExists):
        service.create("sb1", config("sleep 5", name="running"))


def test_containers_of_an_earlier_boot_are_exited_at_restart_without_asking_the_runtime(world: World) -> None:
    before = make_service(world, host=dataclasses.replace(HOST, boot_id="boot-1"))
    running = before.create("sb1", config(name="running"))
    before.start(running)
    created = before.create("sb1", config(name="created"))
    done = before.create("sb1", config(name="done"))
    before.start(done)
    world.runtime.kill(done, 9)
    assert before.status(done).exit_code == 137
    assert {c.boot_id for c in before.list_containers()} == {"boot-1"}
    # The reboot. The fake runtime and monitor still answer "running" for the old ids, as runc would for a
    # state whose pid a process of the new boot reuses: nothing may ask them.
    after = make_service(world, host=dataclasses.replace(HOST, boot_id="boot-2"))
    after.restore()
    for container_id in (running, created):
        status = after.status(container_id)
        assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 255, "Unknown")
        assert "rebooted" in status.message and status.pid == 0
        assert status.finished_at >= status.started_at > 0
    assert (after.status(done).state, after.status(done).exit_code) == (ContainerState.EXITED, 137)
    assert {c.boot_id for c in after.list_containers()} == {"boot-2"}  # settled once, not at every start
    with pytest.raises(FailedPrecondition):
        after.start(created)


def test_containers_recorded_without_a_boot_id_are_restored_as_before(world: World) -> None:
    running = world.service.create("sb1", config(name="running"))
    world.service.start(running)
    assert world.service.status(running).boot_id == ""  # HOST knows no boot id
    after = make_service(world, host=dataclasses.replace(HOST, boot_id="boot-2"))
    after.restore()
    assert after.status(running).state is ContainerState.RUNNING  # the runtime was asked


def test_restore_cleans_up_a_create_that_was_interrupted(world: World) -> None:
    world.monitor.create_delay_exceeded = True
    original_delete = world.store.delete
    world.store.delete = lambda kind, key: None  # type: ignore[method-assign]  # the daemon "dies" mid-undo
    with pytest.raises(DeadlineExceeded):
        world.service.create("sb1", config())
    world.store.delete = original_delete  # type: ignore[method-assign]
    assert len(world.store.list("containers")) == 1
    service = world.restarted()
    assert world.store.list("containers") == {}
    assert service.list_containers() == []


def test_pod_level_callbacks_and_images_in_use(world: World) -> None:
    a = world.service.create("sb1", config(name="a"))
    world.service.start(a)
    world.service.create("sb1", config(name="b"))
    assert world.service.containers_using("img1") == sorted([a, world.service.list_containers()[1].id])
    world.service.stop_all("sb1", timeout=1)
    assert {c.state for c in world.service.list_containers()} == {ContainerState.EXITED}
    world.service.remove_all("sb1")
    assert_nothing_left(world)
    assert world.service.containers_using("img1") == []


def test_a_retry_during_a_slow_create_gets_the_same_container(world: World) -> None:
    import threading

    entered, release = threading.Event(), threading.Event()

    def slow() -> None:
        entered.set()
        release.wait(10)

    world.monitor.before_create = slow
    results: list[str] = []
    first = threading.Thread(target=lambda: results.append(world.service.create("sb1", config())))
    first.start()
    assert entered.wait(10)
    world.monitor.before_create = None
    with pytest.raises(AlreadyExists):  # same name, different request: refused at once
        world.service.create("sb1", config("sleep 2"))
    retry = threading.Thread(target=lambda: results.append(world.service.create("sb1", config())))
    retry.start()
    release.set()
    first.join(10)
    retry.join(10)
    assert len(results) == 2 and results[0] == results[1]
    assert len(world.service.list_containers()) == 1


def test_a_retry_after_a_failed_create_creates_anew(world: World) -> None:
    import threading

    entered, release = threading.Event(), threading.Event()

    def slow_then_fail() -> None:
        entered.set()
        release.wait(10)
        world.monitor.create_delay_exceeded = True

    world.monitor.before_create = slow_then_fail
    errors: list[BaseException] = []

    def first_attempt() -> None:
        try:
            world.service.create("sb1", config())
        except DeadlineExceeded as exc:
            errors.append(exc)

    first = threading.Thread(target=first_attempt)
    first.start()
    assert entered.wait(10)
    world.monitor.before_create = None
    results: list[str] = []
    retry = threading.Thread(target=lambda: results.append(world.service.create("sb1", config())))
    retry.start()
    release.set()
    first.join(10)
    retry.join(10)
    assert len(errors) == 1 and len(results) == 1
    assert [c.id for c in world.service.list_containers()] == results


def test_status_does_not_wait_behind_a_stop(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    container = world.service._get(cid)
    with container.lock:  # as during a stop's grace period
        assert world.service.status(cid).state is ContainerState.RUNNING


def test_a_fully_populated_container_survives_its_json_document() -> None:
    import json

    from domain.container_config import Device, Mount, Propagation, SecurityProfile
    from domain.container_config import ProfileType as PT
    from domain.containers import Container

    cfg = ContainerConfig(
        name="full",
        attempt=3,
        image="busybox",
        command=("/bin/sh",),
        args=("-c", "true"),
        envs=(("A", "1"),),
        mounts=(Mount("/d", "/h", True, Propagation.BIDIRECTIONAL, False, True),),
        devices=(Device("/dev/x", "/dev/null", "r"),),
        labels={"l": "v"},
        annotations={"a": "b"},
        tty=True,
        resources=Resources(cpu_shares=2, hugepage_limits=(HugepageLimit("2MB", 8),), unified=(("k", "v"),)),
        security=SecurityContext(
            run_as_user=0,
            run_as_group=None,
            supplemental_groups=(1, 2),
            namespace_options=NamespaceOptions(pid=NamespaceMode.TARGET, target_id="t"),
            seccomp=SecurityProfile(PT.LOCALHOST, "/p.json"),
        ),
        stop_signal="SIGQUIT",
    )
    original = Container(
        id="c1", sandbox_id="s", name="n", config=cfg, image_id="i", image_ref="r", image_name="busybox",
        runtime_handler="runc", log_path="/l", stop_signal="SIGQUIT", fingerprint="f",
        state=ContainerState.EXITED, creating=False, exit_code=137, reason="OOMKilled", spec={"a": [1]},
        resources=cfg.resources,
    )  # fmt: skip
    restored = Container.from_document(json.loads(json.dumps(original.to_document())))
    assert restored.config == original.config
    assert restored.resources == original.resources
    assert (restored.state, restored.exit_code, restored.reason, restored.spec) == (
        ContainerState.EXITED, 137, "OOMKilled", {"a": [1]},
    )  # fmt: skip


def test_systemd_driver_conmon_scopes_and_oom_kills_counted_by_the_pod_cgroup(world: World) -> None:
    """conmon gets its own scope; a SIGKILLed container whose pod cgroup counted a new OOM kill is OOMKilled
    (systemd may remove the container's scope before conmon reads it)."""
    pod_slice = "/kubepods.slice/kubepods-pod1.slice"
    world.sandboxes.add(dataclasses.replace(world.sandbox, id="sb2", cgroup_parent=pod_slice))
    cgroups = FakeCgroups(unified=True)
    cgroups.oom_counts[pod_slice] = 4
    service = ContainerService(
        store=world.store, sandboxes=world.sandboxes, rootfs=world.rootfs, host_files=FakeHostFiles(),
        bundles=world.bundles, monitor=world.monitor, runtimes={"runc": RuntimeHandler(world.runtime)},
        default_runtime="runc", host=dataclasses.replace(HOST, cgroup_driver="systemd"),
        hugepages=world.hugepages, now_ns=world.clock.now_ns, sleep=world.clock.sleep,
        monotonic=world.clock.monotonic, monitor_cgroups=cgroups,
    )  # fmt: skip
    killed = service.create("sb2", config("exit 137", name="killed"))
    assert cgroups.members == {service.status(killed).pid - 1: f"{pod_slice}/pycrio-conmon-{killed}.scope"}
    service.start(killed)
    assert service.status(killed).reason == REASON_ERROR  # no OOM kill counted meanwhile

    hog = service.create("sb2", config("exit 137", name="hog"))
    cgroups.oom_counts[pod_slice] = 5
    service.start(hog)
    assert (service.status(hog).exit_code, service.status(hog).reason) == (137, REASON_OOM_KILLED)

    conmon = next(pid for pid, path in cgroups.members.items() if hog in path)
    cgroups.release(conmon)  # conmon exits after its container
    service.remove(hog)
    assert f"{pod_slice}/pycrio-conmon-{hog}.scope" not in cgroups.paths


def test_cgroupfs_driver_puts_conmon_beside_the_pod_s_containers(world: World) -> None:
    """cgroupfs: conmon leaves the daemon's cgroup for `<pod parent>/pycrio-conmon-<id>` (cri-o's
    crio-conmon-<id>), removed with the container; one conmon still holds is kept, not a failed removal."""
    parent = "/kubepods/burstable/pod1"
    world.sandboxes.add(dataclasses.replace(world.sandbox, id="sb2", cgroup_parent=parent))
    cgroups = FakeCgroups(unified=True)
    service = ContainerService(
        store=world.store, sandboxes=world.sandboxes, rootfs=world.rootfs, host_files=FakeHostFiles(),
        bundles=world.bundles, monitor=world.monitor, runtimes={"runc": RuntimeHandler(world.runtime)},
        default_runtime="runc", host=HOST, hugepages=world.hugepages, now_ns=world.clock.now_ns,
        sleep=world.clock.sleep, monotonic=world.clock.monotonic, monitor_cgroups=cgroups,
    )  # fmt: skip
    first = service.create("sb2", config("exit 0", name="first"))
    conmon = service.status(first).pid - 1
    assert cgroups.members == {conmon: f"{parent}/pycrio-conmon-{first}"}
    cgroups.release(conmon)
    service.remove(first)
    assert f"{parent}/pycrio-conmon-{first}" not in cgroups.paths

    second = service.create("sb2", config("exit 0", name="second"))
    service.remove(second)  # its conmon never leaves the cgroup here: kept, and the container still goes
    assert f"{parent}/pycrio-conmon-{second}" in cgroups.paths
    assert second not in service.containers_of("sb2")


def _in_thread(action: Callable[[], object]) -> threading.Thread:
    thread = threading.Thread(target=action, daemon=True)  # a hung call must not hang the test run
    thread.start()
    return thread


def test_stop_and_remove_do_not_wait_behind_a_stuck_create(world: World) -> None:
    entered, release = threading.Event(), threading.Event()

    def stuck() -> None:
        entered.set()
        release.wait(60)

    world.monitor.before_create = stuck
    errors: list[BaseException] = []

    def create() -> None:
        try:
            world.service.create("sb1", config())
        except FailedPrecondition as exc:
            errors.append(exc)

    creating = _in_thread(create)
    assert entered.wait(10)
    (cid,) = world.service.containers_of("sb1")

    # What StopPodSandbox and RemovePodSandbox do for the pod: both return while the create is stuck.
    def teardown_pod() -> None:
        world.service.stop_all("sb1", 10)
        world.service.remove_all("sb1")

    teardown = _in_thread(teardown_pod)
    teardown.join(10)
    assert not teardown.is_alive(), "stop/remove waited behind the create"
    release.set()
    creating.join(10)
    assert [str(e) for e in errors] == [f"container {cid} was removed while it was being created"]
    assert_nothing_left(world)
    world.monitor.before_create = None
    world.service.create("sb1", config())  # the name is free again


def test_remove_pre_empts_a_stop_waiting_out_its_grace_period(world: World) -> None:
    # Real time here: the grace period must really be under way while RemoveContainer comes in.
    real = ContainerService(
        store=world.store, sandboxes=world.sandboxes, rootfs=world.rootfs,
        host_files=FakeHostFiles(paths={}), bundles=world.bundles, monitor=world.monitor,
        runtimes={"runc": RuntimeHandler(world.runtime)}, default_runtime="runc", host=HOST,
        hugepages=world.hugepages,
    )  # fmt: skip
    cid = real.create("sb1", config())  # the fake's shell ignores SIGTERM
    real.start(cid)
    stopped: list[bool] = []

    def stop() -> None:
        real.stop(cid, timeout=2**62)
        stopped.append(True)

    stopping = _in_thread(stop)
    deadline = time.monotonic() + 10
    while (cid, 15) not in world.runtime.signals and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (cid, 15) in world.runtime.signals
    removing = _in_thread(lambda: real.remove(cid))
    removing.join(10)
    assert not removing.is_alive(), "RemoveContainer waited behind StopContainer's grace period"
    stopping.join(10)
    assert stopped == [True]
    assert real.list_containers() == []


def test_a_container_of_a_user_namespaced_pod_gets_its_layers_idmapped(world: World) -> None:
    userns = UserNamespace(uids=(IdMapping(0, 65536, 65536),), gids=(IdMapping(0, 131072, 65536),))
    world.sandboxes.add(
        dataclasses.replace(world.sandbox, id="sb2", userns_path="/run/ns/user", user_namespace=userns)
    )
    in_userns = SecurityContext(namespace_options=NamespaceOptions(user_namespace=userns))
    cid = world.service.create("sb2", config(security=in_userns))
    assert world.rootfs.idmaps[cid] == LayerIdmap("/run/ns/user", 65536, 131072)
    spec = world.bundles.read(world.bundles.path(cid))
    assert spec["linux"]["namespaces"][0] == {"type": "user", "path": "/run/ns/user"}
    # A container that would leave the pod's user namespace is refused before anything is mounted.
    with pytest.raises(InvalidArgument, match="mode NODE, but the pod runs in a user namespace"):
        world.service.create("sb2", config(name="outside"))
    assert len(world.rootfs.rootfs) == 1


def test_an_unreadable_record_is_kept_and_the_rest_restored(world: World) -> None:
    good = world.service.create("sb1", config(name="good"))
    world.store.put("containers", "broken", {"id": "broken", "state": "RUNNING"})
    service = world.restarted()
    assert [c.id for c in service.list_containers()] == [good]
    assert world.store.get("containers", "broken") is not None  # not thrown away: it may name a mount


def test_a_container_whose_monitor_died_runs_on_then_stops_exited_with_an_unknown_code(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.monitor.kill_monitor(cid)
    assert world.service.status(cid).state is ContainerState.RUNNING  # the process outlives conmon
    world.service.stop(cid, timeout=0)  # the runtime kills it; no exit will ever be recorded
    stopped = world.service.status(cid)
    assert stopped.state is ContainerState.EXITED
    assert (stopped.exit_code, stopped.reason) == (255, REASON_ERROR)
    assert "conmon" in stopped.message
    assert world.restarted().status(cid).state is ContainerState.EXITED  # a restart agrees
    world.service.remove(cid)
    assert world.service.list_containers() == []


def test_a_dead_monitor_is_looked_at_without_anyone_asking(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    assert world.service.look_at_monitors() == []  # conmon runs: nothing to learn
    world.monitor.kill_monitor(cid)
    # The process runs on unmonitored: left running (as cri-o does), reported once.
    assert world.service.look_at_monitors() == [cid]
    assert world.service.look_at_monitors() == []
    (listed,) = world.service.list_containers()
    assert listed.state is ContainerState.RUNNING
    version = world.service.list_version()
    world.runtime.kill(cid, 9)  # its own process ends; nothing records an exit
    assert world.service.look_at_monitors() == []  # the watch on the process itself wakes this look
    assert world.service.list_version() != version  # lists rebuild
    (listed,) = world.service.list_containers()  # no status, stop or remove in between
    assert (listed.state, listed.exit_code, listed.reason) == (ContainerState.EXITED, 255, REASON_ERROR)
    assert "conmon" in listed.message
    assert world.events.kinds(cid).count(ContainerEventType.STOPPED) == 1
    world.service.status(cid)
    assert world.events.kinds(cid).count(ContainerEventType.STOPPED) == 1


def test_a_monitor_that_recorded_the_exit_is_not_taken_for_a_lost_one(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.runtime.kill(cid, 9)  # conmon writes the exit file, then exits: both watchers wake
    assert world.service.look_at_monitors() == []
    world.service.status(cid)  # the exit-file watcher's look comes second
    stopped = world.service.status(cid)
    assert (stopped.exit_code, stopped.reason, stopped.message) == (137, REASON_ERROR, "")
    assert world.events.kinds(cid).count(ContainerEventType.STOPPED) == 1


def test_a_monitor_that_died_while_the_daemon_was_down_is_found_by_the_first_look(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.monitor.kill_monitor(cid)
    service = world.restarted()
    assert service.status(cid).state is ContainerState.RUNNING
    assert service.look_at_monitors() == [cid]
    world.runtime.kill(cid, 9)
    service.look_at_monitors()
    assert service.list_containers()[0].exit_code == 255


def test_an_exit_learned_while_the_disk_is_full_is_listed_reported_and_recorded_later(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.store.full = True
    world.runtime.kill(cid, 9)  # the monitor records the exit
    (listed,) = world.service.list_containers()  # the list answers from memory all the same
    assert (listed.state, listed.exit_code) == (ContainerState.EXITED, 137)
    assert ContainerEventType.STOPPED in world.events.kinds(cid)
    with pytest.raises(ResourceExhausted):  # a change asked for now is refused, naming what is full
        world.service.create("sb1", config(name="other"))
    world.store.full = False
    assert world.restarted().status(cid).state is ContainerState.EXITED  # learned again at restart


def _own_pid_namespace(name: str = "ctr", pid: NamespaceMode = NamespaceMode.CONTAINER) -> ContainerConfig:
    options = NamespaceOptions(pid=pid)
    return config(name=name, security=SecurityContext(namespace_options=options))


def test_a_container_with_its_own_pid_namespace_is_killed_through_its_init_alone(world: World) -> None:
    own = world.service.create("sb1", _own_pid_namespace("own"))
    shared = world.service.create("sb1", _own_pid_namespace("shared", NamespaceMode.NODE))
    for cid in (own, shared):
        world.service.start(cid)
        world.service.stop(cid, timeout=0)
        assert world.service.status(cid).exit_code == 137
    # The init of its own namespace takes every process with it; in the host's, the cgroup is swept first.
    assert world.runtime.kills_of_all == [shared]
    assert [signal for cid, signal in world.runtime.signals if cid == own] == [9]


def test_the_runtime_state_goes_once_the_exit_is_noticed_and_remove_only_drops_records(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.service.release_runtime(cid)  # still running: no exit recorded, nothing deleted
    assert cid in world.runtime.machine.containers and world.runtime.deletes == []
    world.service.stop(cid, timeout=0)
    world.service.release_runtime(cid)  # what the exit watcher calls
    assert cid not in world.runtime.machine.containers
    assert world.runtime.deletes == [(cid, False)]  # without force: a running one would be refused
    assert world.rootfs.unmounted == {cid} and cid in world.rootfs.rootfs  # unmounted, kept till removed
    world.service.release_runtime(cid)  # a second notice deletes nothing again
    world.service.remove(cid)
    assert world.runtime.deletes == [(cid, False)]
    assert_nothing_left(world)


def test_a_restart_between_the_exit_and_its_delete_leaves_nothing_behind(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.runtime.kill(cid, 9)  # exits while the daemon is down: no one deleted its runtime state
    service = world.restarted()
    assert service.status(cid).state is ContainerState.EXITED
    assert cid in world.runtime.machine.containers
    service.remove(cid)
    world.service = service
    assert_nothing_left(world)


def test_remove_waits_for_the_delete_in_flight_instead_of_deleting_again(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.service.stop(cid, timeout=0)
    entered, go_on = threading.Event(), threading.Event()
    delete = world.runtime.delete
    order: list[str] = []

    def gated_delete(container_id: str, force: bool = False) -> None:
        entered.set()
        go_on.wait(30)
        delete(container_id, force)
        order.append("deleted")

    world.runtime.delete = gated_delete  # type: ignore[method-assign]
    release = threading.Thread(target=world.service.release_runtime, args=(cid,))
    release.start()
    assert entered.wait(30)

    def remove() -> None:
        world.service.remove(cid)
        order.append("removed")

    remover = threading.Thread(target=remove)
    remover.start()
    remover.join(0.2)
    assert remover.is_alive()  # blocked behind the delete in flight
    go_on.set()
    release.join(30)
    remover.join(30)
    assert order == ["deleted", "removed"]
    assert world.runtime.deletes == [(cid, False)]
    assert_nothing_left(world)


def test_remove_deletes_with_force_when_the_exits_delete_failed(world: World) -> None:
    cid = world.service.create("sb1", config())
    world.service.start(cid)
    world.service.stop(cid, timeout=0)
    delete = world.runtime.delete

    def failing_once(container_id: str, force: bool = False) -> None:
        world.runtime.delete = delete  # type: ignore[method-assign]
        raise Internal("fake-runc delete: cgroup busy")

    world.runtime.delete = failing_once  # type: ignore[method-assign]
    world.service.release_runtime(cid)  # fails quietly: left to RemoveContainer
    assert cid in world.runtime.machine.containers
    world.service.remove(cid)
    assert world.runtime.deletes == [(cid, True)]
    assert_nothing_left(world)


def test_an_exit_during_start_is_released_only_once_the_runtime_s_start_returned(world: World) -> None:
    """runc start removes its exec fifo after the process began: a process that exits at once is seen
    exiting while `runc start` still runs, and a delete then would fail that start."""
    cid = world.service.create("sb1", config("exit 0"))
    start = world.runtime.start
    entered, go_on = threading.Event(), threading.Event()

    def slow_start(container_id: str) -> None:
        start(container_id)  # the process runs and exits: the exit is recorded
        entered.set()
        go_on.wait(30)
        if container_id not in world.runtime.machine.containers:
            raise NotFound("fake-runc start: exec fifo: no such file or directory")

    world.runtime.start = slow_start  # type: ignore[method-assign]
    starter = threading.Thread(target=world.service.start, args=(cid,))
    starter.start()
    assert entered.wait(30)
    release = threading.Thread(target=world.service.release_runtime, args=(cid,))
    release.start()
    release.join(0.2)
    assert release.is_alive() and cid in world.runtime.machine.containers  # waits for the start
    go_on.set()
    starter.join(30)
    release.join(30)
    status = world.service.status(cid)
    assert (status.state, status.exit_code, status.reason) == (ContainerState.EXITED, 0, REASON_COMPLETED)
    assert cid not in world.runtime.machine.containers

"""NRI through the real composition root with every host adapter faked (plugins too): who hears StopContainer
and when (never waited for on the list path; once, also across a daemon restart), StopPodSandbox once across
a restart, RemovePodSandbox for a pod undone after plugins heard RunPodSandbox, UpdatePodSandbox around a
pod's resize, and validators."""

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dependency_injector import providers

from app.links.nri import NriLink
from domain.container_config import Resources
from domain.containers import ContainerService
from domain.errors import FailedPrecondition, PycrioError
from domain.nri import NriAdjustment, NriEvent, NriOwner, NriReply, NriRequest, NriResources
from domain.nri_relay import NriRelay
from domain.sandbox_model import SandboxConfig, SandboxMetadata
from tests.fake_node import FakeNode, fake_node
from tests.fakes.container_monitor import FakeContainerMonitor
from tests.fakes.nri import FakeNriPlugin, FakeNriPlugins


@dataclass
class NriNode:
    node: FakeNode
    plugins: FakeNriPlugins

    def connect(self, plugin: FakeNriPlugin) -> FakeNriPlugin:
        self.plugins.connect(plugin)
        return plugin


def _with_nri(node: FakeNode) -> NriNode:
    plugins = FakeNriPlugins()
    node.container.nri_relay.override(providers.Object(NriRelay(plugins)))
    container = node.container
    NriLink(container.nri_relay(), container.sandboxes(), container.container_service()).start()
    return NriNode(node, plugins)


def _events(plugin: FakeNriPlugin, *kinds: NriEvent) -> list[tuple[NriEvent, str]]:
    heard = [(r.event, r.container.id if r.container else r.pod.id) for r in plugin.heard]
    return [h for h in heard if h[0] in kinds]


def _exit_on_its_own(node: FakeNode, container_id: str) -> None:
    node.runtime.machine.finish(node.runtime.machine.containers[container_id], 3)


@dataclass
class SlowStopPlugin(FakeNriPlugin):
    """Answers StopContainer only once `release` is set."""

    release: threading.Event = field(default_factory=threading.Event)

    def call(self, request: NriRequest) -> NriReply:
        if request.event is NriEvent.STOP_CONTAINER:
            self.release.wait(60)
        return super().call(request)


def _heard_soon(plugin: FakeNriPlugin, event: NriEvent) -> None:
    deadline = time.monotonic() + 30
    while not _events(plugin, event):
        assert time.monotonic() < deadline, f"{plugin.name} never heard {event.name}"
        time.sleep(0.01)


def _running_beside_a_slow_plugin(tmp_path: Path) -> tuple[NriNode, SlowStopPlugin, ContainerService, str]:
    """A node with a plugin that hangs on StopContainer, and a running container."""
    world = _with_nri(fake_node(tmp_path))
    plugin = SlowStopPlugin("10-slow")
    world.connect(plugin)
    containers = world.node.container.container_service()
    container_id = world.node.create(world.node.run_pod("web"), "app")
    containers.start(container_id)
    return world, plugin, containers, container_id


def test_an_exit_learnt_by_a_list_is_told_to_plugins_without_the_list_waiting_once(tmp_path: Path) -> None:
    world, plugin, containers, container_id = _running_beside_a_slow_plugin(tmp_path)
    _exit_on_its_own(world.node, container_id)

    def look() -> None:
        containers.list_version()
        assert containers.list_containers()[0].state.name == "EXITED"
        containers.status(container_id)

    looking = threading.Thread(target=look, daemon=True)
    looking.start()
    looking.join(30)
    assert not looking.is_alive(), "a list waited for a plugin's StopContainer"
    plugin.release.set()
    _heard_soon(plugin, NriEvent.STOP_CONTAINER)
    containers.stop(container_id, 0)
    containers.remove(container_id)
    assert _events(plugin, NriEvent.STOP_CONTAINER, NriEvent.REMOVE_CONTAINER) == [
        (NriEvent.STOP_CONTAINER, container_id),
        (NriEvent.REMOVE_CONTAINER, container_id),
    ]


def test_a_status_that_finds_conmon_dead_does_not_wait_for_plugins_either(tmp_path: Path) -> None:
    world, plugin, containers, container_id = _running_beside_a_slow_plugin(tmp_path)
    monitor = world.node.fakes["container_monitor"]
    assert isinstance(monitor, FakeContainerMonitor)
    monitor.kill_monitor(container_id)
    _exit_on_its_own(world.node, container_id)  # no exit recorded: the status learns it from the runtime

    answers: list[str] = []
    looking = threading.Thread(
        target=lambda: answers.append(containers.status(container_id).state.name), daemon=True
    )
    looking.start()
    looking.join(30)
    assert not looking.is_alive(), "a status waited for a plugin's StopContainer"
    assert answers == ["EXITED"]
    plugin.release.set()
    _heard_soon(plugin, NriEvent.STOP_CONTAINER)
    containers.remove(container_id)
    assert len(_events(plugin, NriEvent.STOP_CONTAINER)) == 1


def test_a_cri_stop_tells_plugins_before_it_returns_and_the_exit_watcher_adds_nothing(
    tmp_path: Path,
) -> None:
    world = _with_nri(fake_node(tmp_path))
    plugin = world.connect(FakeNriPlugin("10-watcher"))
    containers = world.node.container.container_service()
    container_id = world.node.create(world.node.run_pod("web"), "app")
    containers.start(container_id)
    containers.stop(container_id, 5)
    assert _events(plugin, NriEvent.STOP_CONTAINER) == [(NriEvent.STOP_CONTAINER, container_id)]
    containers.report_exit(container_id)  # what the thread of the stop's _refresh does, afterwards
    assert len(_events(plugin, NriEvent.STOP_CONTAINER)) == 1


def test_after_a_restart_stopped_containers_and_pods_are_not_reported_stopped_again(tmp_path: Path) -> None:
    before = _with_nri(fake_node(tmp_path))
    pod_id = before.node.run_pod("web")
    reported, unreported = before.node.create(pod_id, "reported"), before.node.create(pod_id, "unreported")
    containers = before.node.container.container_service()
    for container_id in (reported, unreported):
        containers.start(container_id)
    containers.stop(reported, 0)
    _exit_on_its_own(before.node, unreported)  # learnt by nobody before the restart
    before.node.container.sandboxes().stop(pod_id)

    after = _with_nri(fake_node(tmp_path, restart_of=before.node))
    plugin = after.connect(FakeNriPlugin("10-after"))
    (synced_pods, synced_containers) = plugin.synced[0]
    assert {c.id: c.state.name for c in synced_containers} == {reported: "STOPPED", unreported: "STOPPED"}
    assert [p.id for p in synced_pods] == [pod_id]
    restarted = after.node.container.container_service()
    restarted.report_exit(unreported)  # as the exit watcher's look would
    restarted.stop(reported, 0)
    after.node.container.sandboxes().stop(pod_id)
    after.node.container.sandboxes().remove(pod_id)
    stops = (NriEvent.STOP_CONTAINER, NriEvent.STOP_POD_SANDBOX)
    assert _events(plugin, *stops) == [], "the snapshot showed them stopped; an earlier daemon said so"
    removals = _events(plugin, NriEvent.REMOVE_CONTAINER, NriEvent.REMOVE_POD_SANDBOX)
    assert sorted(removals) == sorted(
        [
            (NriEvent.REMOVE_CONTAINER, reported),
            (NriEvent.REMOVE_CONTAINER, unreported),
            (NriEvent.REMOVE_POD_SANDBOX, pod_id),
        ]
    )


def test_a_pod_stopped_before_a_restart_is_told_once_and_one_still_running_after(tmp_path: Path) -> None:
    before = _with_nri(fake_node(tmp_path))
    early = before.connect(FakeNriPlugin("10-early"))
    stopped, running = before.node.run_pod("stopped"), before.node.run_pod("running")
    before.node.container.sandboxes().stop(stopped)
    assert _events(early, NriEvent.STOP_POD_SANDBOX) == [(NriEvent.STOP_POD_SANDBOX, stopped)]

    after = _with_nri(fake_node(tmp_path, restart_of=before.node))
    plugin = after.connect(FakeNriPlugin("10-after"))
    for pod_id in (stopped, running):
        after.node.container.sandboxes().stop(pod_id)
    assert _events(plugin, NriEvent.STOP_POD_SANDBOX) == [(NriEvent.STOP_POD_SANDBOX, running)]


def test_plugins_that_heard_a_pod_undone_by_a_later_plugin_hear_it_removed(tmp_path: Path) -> None:
    world = _with_nri(fake_node(tmp_path))
    first = world.connect(FakeNriPlugin("10-first"))
    failing = world.connect(FakeNriPlugin("20-failing", fail_on=frozenset({NriEvent.RUN_POD_SANDBOX})))
    last = world.connect(FakeNriPlugin("30-last"))
    with pytest.raises(PycrioError, match="20-failing failed RUN_POD_SANDBOX"):
        world.node.run_pod("refused")
    pod_events = (NriEvent.RUN_POD_SANDBOX, NriEvent.STOP_POD_SANDBOX, NriEvent.REMOVE_POD_SANDBOX)
    pod_id = first.heard[0].pod.id
    assert _events(first, *pod_events) == [
        (NriEvent.RUN_POD_SANDBOX, pod_id),
        (NriEvent.REMOVE_POD_SANDBOX, pod_id),
    ]
    assert _events(failing, *pod_events) == [(NriEvent.RUN_POD_SANDBOX, pod_id)]
    assert _events(last, *pod_events) == []
    assert world.node.container.sandboxes().list() == []


def test_a_pod_undone_after_every_plugin_heard_it_run_is_removed_for_all(tmp_path: Path) -> None:
    world = _with_nri(fake_node(tmp_path))
    plugins = [world.connect(FakeNriPlugin(name)) for name in ("10-a", "20-b")]
    config = SandboxConfig(metadata=SandboxMetadata(name="gone", uid="uid-gone", namespace="default"))
    # The kubelet gave up on this RunPodSandbox once plugins had heard of the pod.
    with pytest.raises(PycrioError):
        world.node.container.sandboxes().run(config, caller_gone=lambda: bool(plugins[1].heard))
    for plugin in plugins:
        assert [r.event for r in plugin.heard] == [NriEvent.RUN_POD_SANDBOX, NriEvent.REMOVE_POD_SANDBOX]
    assert world.node.container.sandboxes().list() == []


def test_plugins_hear_a_pod_resize_before_and_after_and_may_refuse_it(tmp_path: Path) -> None:
    world = _with_nri(fake_node(tmp_path))
    plugin = world.connect(FakeNriPlugin("10-sizer"))
    sandboxes = world.node.container.sandboxes()
    pod_id = world.node.run_pod("web")
    sandboxes.update_resources(pod_id, Resources(memory_limit_in_bytes=1 << 24), Resources(cpu_shares=512))
    update, post = [r for r in plugin.heard if r.event >= NriEvent.UPDATE_POD_SANDBOX]
    assert (update.event, post.event) == (NriEvent.UPDATE_POD_SANDBOX, NriEvent.POST_UPDATE_POD_SANDBOX)
    assert update.overhead == NriResources(memory_limit=1 << 24) and update.pod.id == pod_id
    assert update.resources == NriResources(cpu_shares=512)

    refuser = world.connect(FakeNriPlugin("20-refuser", fail_on=frozenset({NriEvent.UPDATE_POD_SANDBOX})))
    with pytest.raises(PycrioError, match="20-refuser failed UPDATE_POD_SANDBOX"):
        sandboxes.update_resources(pod_id, Resources(), Resources(cpu_shares=1024))
    assert sandboxes.status(pod_id).config.resources == Resources(cpu_shares=512), "nothing changed"
    assert [r.event for r in refuser.heard] == [NriEvent.UPDATE_POD_SANDBOX]


def test_validators_see_the_merged_adjustment_and_who_made_it_and_may_reject_it(tmp_path: Path) -> None:
    world = _with_nri(fake_node(tmp_path))
    adjuster = FakeNriPlugin(
        "10-adjuster",
        replies={NriEvent.CREATE_CONTAINER: NriReply(NriAdjustment(env=(("ADDED", "1"),)))},
    )
    world.connect(adjuster)
    validator = world.connect(
        FakeNriPlugin("20-validator", events=frozenset({NriEvent.VALIDATE_CONTAINER_ADJUSTMENT}))
    )
    pod_id = world.node.run_pod("web")
    container_id = world.node.create(pod_id, "accepted")
    (asked,) = validator.heard
    assert asked.event is NriEvent.VALIDATE_CONTAINER_ADJUSTMENT
    assert asked.adjustment == NriAdjustment(env=(("ADDED", "1"),))
    assert asked.container is not None and "ADDED=1" not in asked.container.env, "shown as it was"
    assert asked.owners == (NriOwner(container_id, "env", "ADDED", "10-adjuster"),)
    assert asked.plugins == ("10-adjuster", "20-validator")

    validator.replies[NriEvent.VALIDATE_CONTAINER_ADJUSTMENT] = NriReply(rejected=True, reason="no env")
    with pytest.raises(FailedPrecondition, match=r"20-validator rejected .* container 'rejected': no env"):
        world.node.create(pod_id, "rejected")
    listed = world.node.container.container_service().list_containers()
    assert [c.id for c in listed] == [container_id], "the rejected container was undone"

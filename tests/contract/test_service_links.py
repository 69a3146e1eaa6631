"""Contracts of the ports one domain area offers another (app/links): SandboxLookup, PodContainers,
StreamTargets and WorkloadInventory, each over its fake and over the real glue with the real services, as
the composition root wires them (tests/fake_node.py: every host adapter faked)."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from domain.container_config import SandboxFacts
from domain.containers import ContainerState
from domain.errors import FailedPrecondition, NotFound
from ports.pod_containers import PodContainers
from ports.sandbox_lookup import SandboxLookup
from ports.streaming_targets import StreamContainer, StreamTargets
from ports.workloads import ContainerInfo, PodInfo, WorkloadInventory
from tests.fake_node import FakeNode, fake_node
from tests.fakes.pod_containers import FakePodContainers
from tests.fakes.sandbox_lookup import FakeSandboxLookup
from tests.fakes.streaming import FakeStreamTargets
from tests.fakes.workloads import FakeWorkloadInventory


class World(Protocol):
    """Pods and containers made the way each side can make them."""

    def pod(self, name: str) -> str: ...

    def stop_pod(self, pod_id: str) -> None: ...

    def remove_pod(self, pod_id: str) -> None: ...

    def container(self, pod_id: str, name: str, stdin: bool = False, tty: bool = False) -> str: ...

    def stop(self, container_id: str) -> None: ...

    def running(self, container_id: str) -> bool | None:
        """None once the container is gone."""
        ...


@dataclass
class Ports:
    world: World
    lookup: SandboxLookup
    pod_containers: PodContainers
    targets: StreamTargets
    workloads: WorkloadInventory


class FakeWorld:
    """The fakes, kept consistent with each other as the real services keep themselves."""

    def __init__(self) -> None:
        self.lookup = FakeSandboxLookup()
        self.pod_containers = FakePodContainers()
        self.targets = FakeStreamTargets()
        self.workloads = FakeWorkloadInventory()
        self._containers: dict[str, str] = {}

    def pod(self, name: str) -> str:
        pod_id = f"pod-{name}"
        self.lookup.add(SandboxFacts(id=pod_id, name=name, namespace="default", uid=f"uid-{name}"))
        self.targets.sandboxes[pod_id] = f"/run/netns/{pod_id}"
        self.workloads.add_pod(
            PodInfo(pod_id, name, "default", f"uid-{name}", netns_path=f"/run/netns/{pod_id}", ready=True)
        )
        return pod_id

    def stop_pod(self, pod_id: str) -> None:
        self.lookup.stopped.add(pod_id)
        self.pod_containers.stop_all(pod_id, 0)
        for container_id in self.pod_containers.containers.get(pod_id, {}):
            self.stop(container_id)
        pod = next(p for p in self.workloads.pods() if p.id == pod_id)
        self.workloads.add_pod(PodInfo(pod.id, pod.name, pod.namespace, pod.uid, ready=False))

    def remove_pod(self, pod_id: str) -> None:
        for container_id in list(self.pod_containers.containers.get(pod_id, {})):
            self.targets.containers.pop(container_id, None)
            self.workloads.remove_container(container_id)
        self.pod_containers.remove_all(pod_id)
        self.lookup.sandboxes.pop(pod_id, None)
        self.targets.sandboxes.pop(pod_id, None)
        self.workloads.remove_pod(pod_id)

    def container(self, pod_id: str, name: str, stdin: bool = False, tty: bool = False) -> str:
        container_id = f"{pod_id}-{name}"
        self.pod_containers.add(pod_id, container_id)
        self.targets.containers[container_id] = StreamContainer(container_id, stdin, False, tty)
        self.workloads.add_container(ContainerInfo(container_id, pod_id, name, running=True))
        self._containers[container_id] = pod_id
        return container_id

    def stop(self, container_id: str) -> None:
        pod_id = self._containers[container_id]
        self.pod_containers.containers[pod_id][container_id] = False
        self.targets.stopped.add(container_id)
        self.workloads.add_container(ContainerInfo(container_id, pod_id, container_id, running=False))

    def running(self, container_id: str) -> bool | None:
        pod_id = self._containers[container_id]
        return self.pod_containers.containers.get(pod_id, {}).get(container_id)


class NodeWorld:
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self._sandboxes = node.container.sandboxes()
        self._containers = node.container.container_service()

    def pod(self, name: str) -> str:
        return self.node.run_pod(name)

    def stop_pod(self, pod_id: str) -> None:
        self._sandboxes.stop(pod_id)

    def remove_pod(self, pod_id: str) -> None:
        self._sandboxes.remove(pod_id)

    def container(self, pod_id: str, name: str, stdin: bool = False, tty: bool = False) -> str:
        container_id = self.node.create(pod_id, name, stdin=stdin, tty=tty)
        self._containers.start(container_id)
        return container_id

    def stop(self, container_id: str) -> None:
        self._containers.stop(container_id, 0)

    def running(self, container_id: str) -> bool | None:
        try:
            return self._containers.status(container_id).state is ContainerState.RUNNING
        except NotFound:
            return None


@pytest.fixture(params=["fake", "services"])
def ports(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ports]:
    if request.param == "fake":
        fake = FakeWorld()
        yield Ports(fake, fake.lookup, fake.pod_containers, fake.targets, fake.workloads)
        return
    node = fake_node(tmp_path)
    c = node.container
    yield Ports(NodeWorld(node), c.sandbox_lookup(), c.pod_containers(), c.stream_targets(), c.workloads())


def test_sandbox_lookup_gives_a_ready_pods_facts(ports: Ports) -> None:
    pod_id = ports.world.pod("web")
    facts = ports.lookup.sandbox_facts(pod_id)
    assert (facts.id, facts.name, facts.namespace, facts.uid) == (pod_id, "web", "default", "uid-web")
    with pytest.raises(NotFound):
        ports.lookup.sandbox_facts("no-such-pod")
    ports.world.stop_pod(pod_id)
    with pytest.raises(FailedPrecondition):
        ports.lookup.sandbox_facts(pod_id)


def test_pod_containers_stops_and_removes_only_that_pods_containers(ports: Ports) -> None:
    first, second = ports.world.pod("a"), ports.world.pod("b")
    mine, other = ports.world.container(first, "app"), ports.world.container(second, "app")
    ports.pod_containers.stop_all(first, 0)
    assert (ports.world.running(mine), ports.world.running(other)) == (False, True)
    ports.pod_containers.remove_all(first)
    assert (ports.world.running(mine), ports.world.running(other)) == (None, True)
    ports.pod_containers.stop_all("no-such-pod", 0)
    ports.pod_containers.remove_all("no-such-pod")


def test_stream_targets_know_running_containers_and_pod_network_namespaces(ports: Ports) -> None:
    pod_id = ports.world.pod("web")
    container_id = ports.world.container(pod_id, "shell", stdin=True, tty=True)
    found = ports.targets.container(container_id)
    assert (found.id, found.stdin, found.tty) == (container_id, True, True)
    assert ports.targets.sandbox_netns(pod_id)
    with pytest.raises(NotFound):
        ports.targets.container("no-such-container")
    with pytest.raises(NotFound):
        ports.targets.sandbox_netns("no-such-pod")
    ports.world.stop(container_id)
    with pytest.raises(FailedPrecondition):
        ports.targets.container(container_id)


def test_workloads_list_pods_and_containers_as_they_are(ports: Ports) -> None:
    pod_id = ports.world.pod("web")
    container_id = ports.world.container(pod_id, "app")
    (pod,) = ports.workloads.pods()
    assert (pod.id, pod.name, pod.namespace, pod.uid, pod.ready) == (
        pod_id,
        "web",
        "default",
        "uid-web",
        True,
    )
    assert pod.netns_path
    (container,) = ports.workloads.containers()
    assert (container.id, container.pod_id, container.name, container.running) == (
        container_id,
        pod_id,
        "app",
        True,
    )
    ports.world.stop_pod(pod_id)
    assert [p.ready for p in ports.workloads.pods()] == [False]
    assert [c.running for c in ports.workloads.containers()] == [False]
    ports.world.remove_pod(pod_id)
    assert ports.workloads.pods() == [] and ports.workloads.containers() == []

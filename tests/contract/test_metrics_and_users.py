"""Contracts of RuntimeMetrics (the recording fake, Prometheus, and the disabled adapter, which records
nothing but must accept everything) and of ImageUsers (the fake and the layer store's rootfs records)."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.metrics.disabled import DiscardedMetrics
from adapters.metrics.prometheus import PrometheusMetrics
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.overlay_layer_store import OverlayLayerStore
from ports.image_users import ImageUsers
from ports.layer_store import LayerStore
from ports.metrics import RuntimeMetrics
from tests.fakes.image_users import FakeImageUsers
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.metrics import RecordingMetrics
from tests.storage_fixtures import unmount_all_under

# -- RuntimeMetrics --------------------------------------------------------------------------------------


@dataclass
class Counted:
    """What an adapter counted, as (successful pulls, failed pulls, pulled bytes, OOM kills, dropped events,
    RPCs); None for an adapter that keeps nothing."""

    read: Callable[[], tuple[float, ...] | None]


def _prometheus_counts(metrics: PrometheusMetrics) -> tuple[float, ...]:
    def total(name: str) -> float:
        return sum(
            sample.value
            for family in metrics.registry.collect()
            for sample in family.samples
            if sample.name == name
        )

    return (
        total("pycrio_image_pulls_success_total"),
        total("pycrio_image_pulls_failure_total"),
        total("pycrio_image_pulls_bytes_total"),
        total("pycrio_containers_oom_killed_total"),
        total("pycrio_container_events_dropped_total"),
        total("pycrio_cri_operations_total"),
        total("pycrio_containers_stopped_monitor_total"),
    )


@pytest.fixture(params=["fake", "prometheus", "disabled"])
def metrics(request: pytest.FixtureRequest) -> tuple[RuntimeMetrics, Counted]:
    if request.param == "fake":
        fake = RecordingMetrics()
        return fake, Counted(
            lambda: (
                sum(ok for ok, _ in fake.pulls),
                sum(not ok for ok, _ in fake.pulls),
                fake.pull_bytes,
                fake.ooms,
                fake.events_dropped,
                len(fake.rpcs),
                fake.monitors_lost,
            )
        )
    if request.param == "prometheus":
        real = PrometheusMetrics()
        return real, Counted(lambda: _prometheus_counts(real))
    return DiscardedMetrics(), Counted(lambda: None)


def test_every_report_is_taken_and_counted(metrics: tuple[RuntimeMetrics, Counted]) -> None:
    adapter, counted = metrics
    adapter.rpc_finished("PullImage", "OK", 0.25)
    adapter.rpc_finished("PullImage", "NOT_FOUND", 0.001)
    adapter.image_pull_bytes(1000)
    adapter.image_pull_bytes(24)
    adapter.image_pull_finished(True)
    adapter.image_pull_finished(False, "NotFound")
    adapter.image_pull_finished(False)  # no reason given
    adapter.container_oom_killed()
    adapter.container_events_dropped(3)
    adapter.container_monitor_lost()
    adapter.container_monitor_lost()
    assert counted.read() in (None, (1, 2, 1024, 1, 3, 2, 2))


# -- ImageUsers ------------------------------------------------------------------------------------------


class FakeUsersWorld:
    def __init__(self) -> None:
        self.users = FakeImageUsers()

    def use(self, container_id: str, image_id: str) -> None:
        self.users.using.setdefault(image_id, []).append(container_id)

    def stop_using(self, container_id: str) -> None:
        for ids in self.users.using.values():
            if container_id in ids:
                ids.remove(container_id)


class LayerUsersWorld:
    """A container uses its image from the rootfs it is created with to its removal."""

    def __init__(self, layers: LayerStore) -> None:
        self.layers = layers
        self.users: ImageUsers = RootfsImageUsers(layers)

    def use(self, container_id: str, image_id: str) -> None:
        self.layers.create_rootfs(container_id, [], image_id)

    def stop_using(self, container_id: str) -> None:
        self.layers.remove_rootfs(container_id)


@pytest.fixture(params=["fake", "rootfs-in-memory", pytest.param("rootfs-overlay", marks=pytest.mark.root)])
def users_world(request: pytest.FixtureRequest, tmp_path: Path) -> FakeUsersWorld | LayerUsersWorld:
    if request.param == "fake":
        return FakeUsersWorld()
    if request.param == "rootfs-in-memory":
        return LayerUsersWorld(InMemoryLayerStore())
    overlay = OverlayLayerStore(tmp_path / "storage", AtomicFileStateStore(tmp_path / "state"))
    request.addfinalizer(lambda: unmount_all_under(tmp_path))
    return LayerUsersWorld(overlay)


def test_the_users_of_an_image_are_the_containers_made_from_it(
    users_world: FakeUsersWorld | LayerUsersWorld,
) -> None:
    assert users_world.users.containers_using("img") == []
    users_world.use("c2", "img")
    users_world.use("c1", "img")
    users_world.use("c3", "other")
    assert users_world.users.containers_using("img") == ["c1", "c2"]
    users_world.stop_using("c2")
    assert users_world.users.containers_using("img") == ["c1"]
    assert users_world.users.containers_using("unknown") == []

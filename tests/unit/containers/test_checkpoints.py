"""CheckpointContainer and restore through CreateContainer/StartContainer, against fakes: what goes into the
archive, which config a restored container gets, the refusals, and restored containers that never start."""

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from domain.checkpoints import CHECKPOINT_NOT_IMPLEMENTED, CHECKPOINT_UNSUPPORTED
from domain.container_config import Mount
from domain.containers import ContainerService, ContainerState
from domain.errors import FailedPrecondition, Internal, InvalidArgument, NotFound, NotSupported
from domain.events import ContainerEventType
from tests.fakes.checkpoints import FakeCheckpointArchives
from tests.unit.containers.test_container_service import World, config, make_service, world  # noqa: F401


@pytest.fixture
def archives(tmp_path: Path) -> FakeCheckpointArchives:
    return FakeCheckpointArchives(tmp_path / "checkpoints")


@pytest.fixture
def service(world: World, archives: FakeCheckpointArchives) -> ContainerService:  # noqa: F811
    world.service = make_service(world, checkpoints=archives)
    return world.service


def running(service: ContainerService, name: str = "counter", **fields: Any) -> str:
    container_id = service.create("sb1", dataclasses.replace(config(name=name), **fields))
    service.start(container_id)
    return container_id


def test_a_checkpoint_archives_the_running_container_which_goes_on(
    world: World,  # noqa: F811
    service: ContainerService,
    archives: FakeCheckpointArchives,
    tmp_path: Path,
) -> None:
    container_id = running(service)
    location = tmp_path / "cp.tar"
    service.checkpoint(container_id[:12], str(location), timeout=0)
    assert service.status(container_id).state is ContainerState.RUNNING
    dumps = archives.read_dumps(str(location))
    assert dumps.spec == service.status(container_id).spec
    assert dumps.config["id"] == container_id and dumps.config["name"] == "counter"
    assert (dumps.config["rootfsImageRef"], dumps.config["rootfsImageName"]) == ("img1", "busybox:latest")
    assert dumps.config["rootfsImage"] == "busybox:latest" and dumps.config["restored"] is False
    assert list(archives.root.iterdir()) == []  # the work directory went into the archive


def test_a_restored_container_continues_the_checkpointed_process(
    world: World,  # noqa: F811
    service: ContainerService,
    archives: FakeCheckpointArchives,
    tmp_path: Path,
) -> None:
    original = running(service, annotations={"io.kubernetes.container.hash": "old", "keep": "me"})
    pid = service.status(original).pid
    location = str(tmp_path / "cp.tar")
    service.checkpoint(original, location, timeout=30)

    request = config(
        name="restored", image=location, command=(), annotations={"io.kubernetes.container.hash": "new"}
    )
    restored = service.create("sb1", request)
    created = service.status(restored)
    assert created.state is ContainerState.CREATED and created.restore_from
    assert world.runtime.state(restored) is None  # nothing runs before StartContainer
    assert created.config.image == "busybox:latest" and created.image_id == "img1"
    assert created.config.command == ("/bin/sh", "-c", "sleep 1000")  # the checkpointed process
    assert created.config.annotations == {"io.kubernetes.container.hash": "new", "keep": "me"}

    service.start(restored)
    status = service.status(restored)
    assert status.state is ContainerState.RUNNING and not status.restore_from
    assert world.runtime.machine.containers[restored].restored_from == pid
    assert not (archives.root / restored).exists()
    assert world.events.kinds(restored) == [ContainerEventType.CREATED, ContainerEventType.STARTED]


def test_checkpoints_are_refused_with_the_runtime_s_reason_before_any_lookup(
    world: World,  # noqa: F811
    archives: FakeCheckpointArchives,
    tmp_path: Path,
) -> None:
    world.runtime.checkpoint_refusal = "`criu check` exited 1: vdso: Unexpected rt vDSO area bounds"
    service = make_service(world, checkpoints=archives)
    assert service.check_checkpoint_support() == {"runc": world.runtime.checkpoint_refusal}
    assert service.checkpoint_refusal() == world.runtime.checkpoint_refusal
    for container_id in ("", "no-such-container"):
        with pytest.raises(NotSupported) as refused:
            service.checkpoint(container_id, str(tmp_path / "cp.tar"), timeout=0)
        assert str(refused.value) == CHECKPOINT_NOT_IMPLEMENTED  # the kubelet's words
    with pytest.raises(NotSupported) as refused:
        service.create("sb1", config(image=str(tmp_path / "cp.tar")))
    assert str(refused.value) == f"{CHECKPOINT_UNSUPPORTED}: {world.runtime.checkpoint_refusal}"
    assert service.list_containers() == []


def test_without_archives_checkpoint_restore_is_switched_off(world: World, tmp_path: Path) -> None:  # noqa: F811
    assert "enable_criu_support = false" in world.service.checkpoint_refusal()
    with pytest.raises(NotSupported):
        world.service.checkpoint("x", str(tmp_path / "cp.tar"), timeout=0)
    with pytest.raises(NotSupported, match="enable_criu_support = false"):
        world.service.create("sb1", config(image=str(tmp_path / "cp.tar")))


def test_bad_requests_name_the_field(service: ContainerService, tmp_path: Path) -> None:
    container_id = running(service)
    for location in ("", "relative/cp.tar", str(tmp_path) + "/", "/" + "x" * 5000):
        with pytest.raises(InvalidArgument, match="location"):
            service.checkpoint(container_id, location, timeout=0)
    with pytest.raises(InvalidArgument, match="timeout"):
        service.checkpoint(container_id, str(tmp_path / "cp.tar"), timeout=-1)
    created = service.create("sb1", config(name="idle"))
    with pytest.raises(FailedPrecondition, match="not RUNNING"):
        service.checkpoint(created, str(tmp_path / "cp.tar"), timeout=0)
    with pytest.raises(NotFound):
        service.checkpoint("no-such-container", str(tmp_path / "cp.tar"), timeout=0)
    with pytest.raises(InvalidArgument, match=r"image.image: .*not found"):
        service.create("sb1", config(name="r", image=str(tmp_path / "absent.tar")))


def test_a_restore_needs_the_checkpointed_container_s_mounts_and_image(
    world: World,  # noqa: F811
    service: ContainerService,
    tmp_path: Path,
) -> None:
    container_id = running(service, mounts=(Mount("/srv/data", "/data"),))
    location = str(tmp_path / "cp.tar")
    service.checkpoint(container_id, location, timeout=0)
    with pytest.raises(InvalidArgument, match=r"mounts: .* /srv/data"):
        service.create("sb1", config(name="r", image=location))
    restored = service.create("sb1", config(name="r", image=location, mounts=(Mount("/srv/data", "/data"),)))
    assert [m.container_path for m in service.status(restored).config.mounts] == ["/srv/data"]
    service.remove(restored)

    world.rootfs.images.clear()
    with pytest.raises(NotFound, match=r"image.image: the image of checkpoint"):
        service.create("sb1", config(name="r2", image=location, mounts=(Mount("/srv/data", "/data"),)))


def test_a_restored_container_never_started_stops_and_goes_cleanly(
    world: World,  # noqa: F811
    service: ContainerService,
    archives: FakeCheckpointArchives,
    tmp_path: Path,
) -> None:
    location = str(tmp_path / "cp.tar")
    service.checkpoint(running(service), location, timeout=0)
    pending = service.create("sb1", config(name="pending", image=location))
    restarted = make_service(world, checkpoints=archives)
    restarted.restore()  # a daemon restart keeps it waiting for its restore
    assert restarted.status(pending).state is ContainerState.CREATED
    restarted.stop(pending, timeout=10)
    stopped = restarted.status(pending)
    assert stopped.state is ContainerState.EXITED and "before its restore" in stopped.message
    assert world.runtime.signals == []  # nothing ran, nothing was signalled
    restarted.remove(pending)
    assert not (archives.root / pending).exists()

    again = restarted.create("sb1", config(name="again", image=location))
    restarted.remove(again)
    assert not (archives.root / again).exists() and world.runtime.state(again) is None


def test_a_failed_restore_is_a_start_error(
    world: World,  # noqa: F811
    service: ContainerService,
    archives: FakeCheckpointArchives,
    tmp_path: Path,
) -> None:
    location = str(tmp_path / "cp.tar")
    service.checkpoint(running(service), location, timeout=0)
    restored = service.create("sb1", config(name="broken", image=location))
    (Path(service.status(restored).restore_from) / "inventory.img").write_text("{}")  # images damaged
    with pytest.raises(Internal, match="restore"):
        service.start(restored)
    status = service.status(restored)
    assert (status.state, status.reason) == (ContainerState.EXITED, "StartError")
    service.remove(restored)
    assert not (archives.root / restored).exists()


def test_the_pod_uid_annotation_follows_the_new_pod(
    world: World,  # noqa: F811
    service: ContainerService,
    tmp_path: Path,
) -> None:
    location = str(tmp_path / "cp.tar")
    service.checkpoint(running(service, annotations={"io.kubernetes.pod.uid": "uid1"}), location, timeout=0)
    world.sandboxes.add(dataclasses.replace(world.sandbox, id="sb2", uid="uid2"))
    restored = service.create("sb2", config(name="moved", image=location))
    assert service.status(restored).config.annotations["io.kubernetes.pod.uid"] == "uid2"

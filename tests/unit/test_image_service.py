"""The image service against fakes: pull, look-ups, removal, sharing, single-flight and timeouts."""

import threading
from collections.abc import Iterator
from dataclasses import replace

import pytest
import structlog

from adapters.storage.image_users import RootfsImageUsers
from domain.errors import DeadlineExceeded, FailedPrecondition, InvalidArgument, NotFound
from domain.images import ImageService, image_holder
from domain.registries_conf import Endpoint, RegistriesConf, RegistryTable
from tests.fakes.image_store import InMemoryImageStore
from tests.fakes.image_users import FakeImageUsers
from tests.fakes.layer_store import InMemoryLayerStore
from tests.fakes.registry import Gate, InMemoryRegistry
from tests.fakes.signatures import trust_with
from tests.layer_tars import digest, directory, file, layer, symlink

BASE = layer([directory("bin"), file("bin/sh", b"#!busybox", mode=0o755)])
APP = layer([file("app", b"app v1")], "zstd")
APP2 = layer([file("app", b"app v2")], "none")


class World:
    def __init__(self, **options: object) -> None:
        self.registry = InMemoryRegistry()
        self.layers = InMemoryLayerStore()
        self.images = InMemoryImageStore()
        self.users = FakeImageUsers()
        self.service = ImageService(
            self.registry,
            self.layers,
            self.images,
            self.users,
            trust_with(self.registry),
            **options,  # type: ignore[arg-type]
        )


@pytest.fixture
def world() -> World:
    return World()


def test_pull_records_the_image_under_its_config_digest(world: World) -> None:
    stored = world.registry.add("busybox", [BASE, APP], {"User": "1000", "Env": ["A=1"], "Cmd": ["sh"]})
    image_id = world.service.pull("busybox")
    assert "sha256:" + image_id == stored.config_digest
    image = world.service.status(image_id)
    assert image is not None
    assert image.repo_tags == ("docker.io/library/busybox:latest",)
    assert image.repo_digests == (f"docker.io/library/busybox@{digest(stored.manifest)}",)
    assert image.config.user == "1000" and image.config.env == ("A=1",) and image.config.cmd == ("sh",)
    assert len(image.layers) == 2 and image.size > 0
    assert image.oci_config["config"]["User"] == "1000"


def test_every_kind_of_reference_finds_the_same_image(world: World) -> None:
    stored = world.registry.add("127.0.0.1:5000/team/app:1.0", [BASE])
    image_id = world.service.pull("127.0.0.1:5000/team/app:1.0")
    references = [
        image_id,
        f"sha256:{image_id}",
        image_id[:12],
        "127.0.0.1:5000/team/app:1.0",
        f"127.0.0.1:5000/team/app@{digest(stored.manifest)}",
        f"127.0.0.1:5000/team/app:1.0@{digest(stored.manifest)}",
    ]
    for reference in references:
        found = world.service.status(reference)
        assert found is not None and found.id == image_id, reference
    assert world.service.status("127.0.0.1:5000/team/app:2.0") is None
    assert world.service.status("127.0.0.1:5000/team/app") is None


def test_short_names_are_docker_hub_names(world: World) -> None:
    world.registry.add("docker.io/library/busybox:latest", [BASE])
    image_id = world.service.pull("docker.io/library/busybox")
    for reference in ("busybox", "busybox:latest", "library/busybox", "docker.io/busybox:latest"):
        found = world.service.status(reference)
        assert found is not None and found.id == image_id, reference


def test_short_names_also_match_on_search_registries() -> None:
    world = World(registries_conf=lambda: RegistriesConf(("127.0.0.1:5000",)))
    world.registry.add("127.0.0.1:5000/busybox:latest", [BASE])
    image_id = world.service.pull("127.0.0.1:5000/busybox")
    found = world.service.status("busybox")
    assert found is not None and found.id == image_id


def test_registries_conf_decides_where_an_image_comes_from() -> None:
    conf = RegistriesConf(
        ("r.test",),
        (
            RegistryTable("r.test", "r.test", mirrors=(Endpoint("mirror.test"),)),
            RegistryTable("blocked.test", "blocked.test", blocked=True),
        ),
    )
    world = World(registries_conf=lambda: conf)
    world.registry.add("mirror.test/app:1", [BASE])
    world.registry.add("r.test/app:1", [APP])  # the origin differs: the mirror must win
    image_id = world.service.pull("app:1")
    assert world.service.status("r.test/app:1") == world.service.status(image_id)
    assert world.layers.get(BASE.diff_id) is not None and world.layers.get(APP.diff_id) is None
    world.registry.add("blocked.test/app:1", [BASE])
    with pytest.raises(FailedPrecondition, match="blocked"):
        world.service.pull("blocked.test/app:1")


def test_a_pull_by_digest_has_no_tag(world: World) -> None:
    stored = world.registry.add("registry.test/app:v1", [BASE])
    reference = f"registry.test/app@{digest(stored.manifest)}"
    image_id = world.service.pull(reference)
    image = world.service.status(reference)
    assert image is not None and image.id == image_id
    assert image.repo_tags == ()
    assert image.repo_digests == (reference,)


def test_names_of_one_image_gather_on_one_record(world: World) -> None:
    for name in ("registry.test/tags:1", "registry.test/tags:2", "other.test/pause:3.9"):
        world.registry.add(name, [BASE], {"Cmd": ["x"]})
    ids = {
        world.service.pull(name)
        for name in ("registry.test/tags:1", "registry.test/tags:2", "other.test/pause:3.9")
    }
    assert len(ids) == 1
    (image,) = world.service.list_images()
    assert sorted(image.repo_tags) == ["other.test/pause:3.9", "registry.test/tags:1", "registry.test/tags:2"]
    assert len(image.repo_digests) == 2
    world.service.remove("registry.test/tags:2")
    for name in ("registry.test/tags:1", "registry.test/tags:2", "other.test/pause:3.9", ids.pop()):
        assert world.service.status(name) is None
    assert world.layers.list_layers() == []


def test_layers_are_shared_and_downloaded_once(world: World) -> None:
    world.registry.add("r.test/one:1", [BASE, APP])
    world.registry.add("r.test/two:1", [BASE, APP2])
    one = world.service.pull("r.test/one:1")
    two = world.service.pull("r.test/two:1")
    assert world.registry.blob_downloads[BASE.descriptor.digest] == 1
    base = world.layers.get(BASE.diff_id)
    assert base is not None and base.holders == {image_holder(one), image_holder(two)}
    world.service.remove("r.test/one:1")
    assert world.layers.get(BASE.diff_id) is not None
    assert len(world.layers.list_layers()) == 2
    world.service.remove(two)
    assert world.layers.list_layers() == []


def test_pulling_again_downloads_nothing(world: World) -> None:
    world.registry.add("r.test/one:1", [BASE, APP])
    first = world.service.pull("r.test/one:1")
    assert world.service.pull("r.test/one:1") == first
    assert set(world.registry.blob_downloads.values()) == {1}
    assert len(world.service.list_images()) == 1


def test_a_moved_tag_leaves_the_old_image_untagged(world: World) -> None:
    world.registry.add("r.test/app:stable", [BASE, APP])
    old = world.service.pull("r.test/app:stable")
    world.registry.add("r.test/app:stable", [BASE, APP2])
    new = world.service.pull("r.test/app:stable")
    assert old != new
    old_image, new_image = world.service.status(old), world.service.status("r.test/app:stable")
    assert old_image is not None and old_image.repo_tags == () and old_image.repo_digests
    assert new_image is not None and new_image.id == new


def test_list_filters_by_reference(world: World) -> None:
    world.registry.add("r.test/a:1", [BASE])
    world.registry.add("r.test/b:1", [APP])
    a = world.service.pull("r.test/a:1")
    world.service.pull("r.test/b:1")
    assert len(world.service.list_images()) == 2
    assert [i.id for i in world.service.list_images("r.test/a:1")] == [a]
    assert world.service.list_images("r.test/c:1") == []


def test_removing_an_absent_image_succeeds(world: World) -> None:
    world.service.remove("r.test/none:1")
    world.service.remove("f" * 64)


def test_an_image_in_use_is_not_removed(world: World) -> None:
    world.registry.add("r.test/a:1", [BASE])
    image_id = world.service.pull("r.test/a:1")
    world.users.using[image_id] = ["c2", "c1"]
    with pytest.raises(FailedPrecondition, match="c1, c2"):
        world.service.remove("r.test/a:1")
    assert world.service.status(image_id) is not None
    world.users.using.clear()
    world.service.remove("r.test/a:1")
    assert world.service.status(image_id) is None


def test_a_container_rootfs_keeps_the_image_in_use() -> None:
    layers = InMemoryLayerStore()
    registry = InMemoryRegistry()
    service = ImageService(
        registry, layers, InMemoryImageStore(), RootfsImageUsers(layers), trust_with(registry)
    )
    registry.add("r.test/a:1", [BASE, APP])
    image_id = service.pull("r.test/a:1")
    rootfs = service.create_rootfs("ctr1", "r.test/a:1")
    assert rootfs.image.id == image_id
    assert service.create_rootfs("ctr1", image_id).path == rootfs.path
    with pytest.raises(FailedPrecondition, match="ctr1"):
        service.remove(image_id)
    assert layers.merged_view("ctr1")["app"] == ("file", b"app v1")
    service.remove_rootfs("ctr1")
    service.remove(image_id)
    assert layers.list_layers() == []
    with pytest.raises(NotFound):
        service.create_rootfs("ctr2", image_id)


def test_bad_references(world: World) -> None:
    with pytest.raises(InvalidArgument):
        world.service.status("UPPER/case")
    with pytest.raises(InvalidArgument):
        world.service.status("")
    with pytest.raises(InvalidArgument):
        world.service.pull("")


def test_an_ambiguous_id_prefix_is_refused(world: World) -> None:
    world.registry.add("r.test/a:1", [BASE])
    image = world.service.status(world.service.pull("r.test/a:1"))
    assert image is not None
    for twin in ("abc1" + "0" * 60, "abc2" + "0" * 60):
        world.images.put(replace(image, id=twin, repo_tags=(), repo_digests=()))
    with pytest.raises(InvalidArgument, match="ambiguous"):
        world.service.status("abc")
    with pytest.raises(InvalidArgument, match="ambiguous"):
        world.service.status("sha256:abc")
    found = world.service.status("abc2")
    assert found is not None and found.id.startswith("abc2")


def test_a_hostile_layer_fails_the_pull_and_keeps_nothing(world: World) -> None:
    evil = layer([symlink("etc", "/etc"), file("etc/passwd", b"owned")])
    world.registry.add("r.test/evil:1", [BASE, evil])
    with pytest.raises(InvalidArgument, match="symlink"):
        world.service.pull("r.test/evil:1")
    assert world.service.list_images() == []
    assert world.layers.list_layers() == [], "the base layer unpacked before the hostile one is released"


def test_a_config_that_disagrees_with_its_manifest_is_refused(world: World) -> None:
    world.registry.add("r.test/bad:1", [BASE, APP], config_layers=[BASE])
    with pytest.raises(InvalidArgument, match="layers"):
        world.service.pull("r.test/bad:1")
    assert world.service.list_images() == []


def test_concurrent_pulls_share_one_download(world: World) -> None:
    world.registry.add("r.test/a:1", [BASE])
    gate = world.registry.gates[BASE.descriptor.digest] = Gate()
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(world.service.pull("r.test/a:1"))) for _ in range(4)
    ]
    threads[0].start()
    assert gate.reached.wait(10)
    for thread in threads[1:]:
        thread.start()
    gate.release.set()
    for thread in threads:
        thread.join(10)
    assert len(results) == 4 and len(set(results)) == 1
    assert world.registry.resolves == 1
    assert world.registry.blob_downloads[BASE.descriptor.digest] == 1


BIG = layer([file("big", bytes(range(256)) * 4000)], "none")


def join_pull_workers(image: str) -> None:
    """A pull's worker and layer threads (they outlive callers that gave up), so none logs into a later
    test."""
    for thread in threading.enumerate():
        if thread.name.startswith(f"pull {image}"):
            thread.join(30)
            assert not thread.is_alive()


def _stalled(world: World, name: str) -> Iterator[Gate]:
    world.registry.add(name, [BIG])
    gate = world.registry.gates[BIG.descriptor.digest] = Gate()
    yield gate
    gate.release.set()
    join_pull_workers(name)


def test_a_stalled_pull_is_cancelled_naming_the_layer_and_the_registry() -> None:
    world = World(pull_progress_timeout=0.2)
    for _gate in _stalled(world, "r.test/slow:1"):
        with pytest.raises(DeadlineExceeded, match="no progress") as failure:
            world.service.pull("r.test/slow:1")
        first_chunk = world.registry.chunk_size
        assert f"on layer {BIG.descriptor.digest} (1/1, {first_chunk} of {BIG.descriptor.size} bytes)" in str(
            failure.value
        )
        assert "from registry r.test" in str(failure.value)
    assert world.service.list_images() == []


def test_progress_is_logged_per_layer_and_every_interval_and_readable_while_running() -> None:
    world = World(pull_progress_interval=0.0001)
    for gate in _stalled(world, "r.test/slow:1"):
        big = BIG
        with structlog.testing.capture_logs() as events:
            puller = threading.Thread(target=world.service.pull, args=("r.test/slow:1",))
            puller.start()
            assert gate.reached.wait(10)
            (running,) = world.service.pulls_in_progress()
            assert (running.image, running.registry, running.layer) == (
                "r.test/slow:1",
                "r.test",
                big.descriptor.digest,
            )
            assert running.bytes_total == big.descriptor.size and running.layers_total == 1
            gate.release.set()
            puller.join(10)
        assert world.service.pulls_in_progress() == []
    names = [e["event"] for e in events if e["event"].startswith("pull ")]
    assert names[0] == "pull layer started" and names[-1] == "pull layer finished"
    progress = [e for e in events if e["event"] == "pull progress"]
    done = [e["bytes_done"] for e in progress]
    assert len(done) >= 2 and done == sorted(done) and done[-1] <= big.descriptor.size
    assert progress[-1]["bytes_total"] == big.descriptor.size and progress[-1]["registry"] == "r.test"
    assert progress[-1]["bytes_per_second"] > 0
    finished = next(e for e in events if e["event"] == "pull layer finished")
    assert finished["bytes_done"] == finished["bytes_total"] == big.descriptor.size


def test_the_callers_deadline_is_honoured_and_a_lone_pull_is_cancelled(world: World) -> None:
    for gate in _stalled(world, "r.test/slow:1"):
        with pytest.raises(DeadlineExceeded, match="deadline"):
            world.service.pull("r.test/slow:1", timeout=0.05)
        assert gate.reached.wait(10)
    assert world.service.list_images() == []


def test_a_pull_outlives_one_impatient_waiter(world: World) -> None:
    for gate in _stalled(world, "r.test/slow:1"):
        results: list[str] = []

        def pull_patiently(into: list[str] = results) -> None:
            into.append(world.service.pull("r.test/slow:1"))

        patient = threading.Thread(target=pull_patiently)
        patient.start()
        assert gate.reached.wait(10)
        with pytest.raises(DeadlineExceeded):
            world.service.pull("r.test/slow:1", timeout=0.05)
        gate.release.set()
        patient.join(10)
        assert len(results) == 1 and world.service.status(results[0]) is not None


def test_pinned_images() -> None:
    world = World(pinned_images=["busybox", "r.test/pause*"])
    world.registry.add("busybox", [BASE])
    world.registry.add("r.test/pause:3.9", [APP])
    world.registry.add("r.test/other:1", [APP2])
    pinned = {world.service.pull(name): True for name in ("busybox", "r.test/pause:3.9")}
    other = world.service.pull("r.test/other:1")
    for image in world.service.list_images():
        assert world.service.is_pinned(image) == (image.id in pinned and image.id != other)


def test_recover_releases_layers_of_vanished_images(world: World) -> None:
    world.registry.add("r.test/a:1", [BASE])
    image_id = world.service.pull("r.test/a:1")
    world.images.delete(image_id)  # a crash between deleting the record and releasing the layers
    world.service.recover()
    assert world.layers.list_layers() == []

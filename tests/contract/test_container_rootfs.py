"""The ContainerRootfs contract: the in-memory fake, and (root) ImageServiceRootfs over a real image service
with overlayfs layers, its image pulled from the registry fake."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.containers.image_rootfs import ImageServiceRootfs
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.mounts import is_mounted
from adapters.storage.overlay_layer_store import OverlayLayerStore
from domain.container_config import ImageConfig
from domain.errors import NotFound
from domain.images import ImageService
from ports.container_rootfs import ContainerRootfs
from tests.fakes.container_rootfs import FakeContainerRootfs, FakeImage
from tests.fakes.registry import InMemoryRegistry
from tests.fakes.signatures import trust_with
from tests.layer_tars import directory, file, layer, symlink
from tests.storage_fixtures import unmount_all_under

NAME = "r.test/app:1"
PASSWD = "root:x:0:0:root:/root:/bin/sh\n"


@pytest.fixture(params=["fake", pytest.param("images", marks=pytest.mark.root)])
def rootfs(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ContainerRootfs]:
    if request.param == "fake":
        fake = FakeContainerRootfs()
        links = {"/work": "/proc/self/fd/7", "/etc/up": "../.."}
        fake.add_image(
            FakeImage("a" * 64, (NAME,), ImageConfig(cmd=("/bin/sh",)), {"/etc/passwd": PASSWD}, links)
        )
        yield fake
        return
    registry = InMemoryRegistry()
    entries = [
        directory("etc"),
        file("etc/passwd", PASSWD.encode()),
        symlink("work", "/proc/self/fd/7"),
        symlink("etc/up", "../.."),
    ]
    registry.add(NAME, [layer(entries)], {"Cmd": ["/bin/sh"]})
    state = AtomicFileStateStore(tmp_path / "state")
    layers = OverlayLayerStore(tmp_path / "storage", state)
    images = ImageService(
        registry, layers, StateImageStore(state), RootfsImageUsers(layers), trust_with(registry)
    )
    images.pull(NAME)
    try:
        yield ImageServiceRootfs(images)
    finally:
        unmount_all_under(tmp_path)


def test_an_image_is_found_by_name_with_its_config(rootfs: ContainerRootfs) -> None:
    image = rootfs.resolve_image(NAME)
    assert image.name == NAME and image.config.cmd == ("/bin/sh",)
    assert rootfs.resolve_image(image.id).id == image.id
    with pytest.raises(NotFound):
        rootfs.resolve_image("r.test/absent:1")


def test_a_containers_root_reads_the_images_files_until_removed(rootfs: ContainerRootfs) -> None:
    image = rootfs.resolve_image(NAME)
    assert rootfs.create("c1", image.id)
    assert rootfs.read_file("c1", "/etc/passwd") == PASSWD
    assert rootfs.read_file("c1", "/etc/absent") is None
    assert rootfs.directory("c1", "/etc") is not None
    assert rootfs.directory("c1", "/etc/passwd") is None
    rootfs.remove("c1")
    rootfs.remove("c1")
    with pytest.raises(NotFound):
        rootfs.read_file("c1", "/etc/passwd")


def test_an_unmounted_root_keeps_its_writable_layer_until_removed(rootfs: ContainerRootfs) -> None:
    image = rootfs.resolve_image(NAME)
    rootfs.create("c1", image.id)
    layer = rootfs.writable_layer("c1")
    rootfs.unmount("c1")
    rootfs.unmount("c1")
    rootfs.unmount("unknown")
    assert rootfs.read_file("c1", "/etc/passwd") is None  # not read through an unmounted root
    assert rootfs.writable_layer("c1") == layer
    if isinstance(rootfs, ImageServiceRootfs):
        assert Path(layer).is_dir() and not is_mounted(Path(layer).parent / "merged")
    rootfs.remove("c1")
    with pytest.raises(NotFound):
        rootfs.writable_layer("c1")


def test_a_path_resolves_through_the_images_symlinks_as_the_container_sees_it(
    rootfs: ContainerRootfs,
) -> None:
    rootfs.create("c1", rootfs.resolve_image(NAME).id)
    assert rootfs.resolve_path("c1", "/work") == "/proc/self/fd/7"  # absent below the link: kept as written
    assert rootfs.resolve_path("c1", "/etc/up/etc/./passwd") == "/etc/passwd"
    assert rootfs.resolve_path("c1", "/etc/up/../../x/../y") == "/y"  # never above /
    assert rootfs.resolve_path("c1", "/etc") == "/etc"
    rootfs.remove("c1")
    with pytest.raises(NotFound):
        rootfs.resolve_path("c1", "/etc")

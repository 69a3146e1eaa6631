"""A container root file system from a real pull: the image service with the httpx registry adapter and
the overlay layer store, against the test registry, then a program of the image run inside it (chroot).

The daemon exposes no RPC that builds a root file system before the containers service exists, so this
drives the same objects the daemon wires, in-process, as root.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.registry.host_platform import host_platform
from adapters.registry.http_registry import HttpRegistry
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from adapters.storage.image_users import RootfsImageUsers
from adapters.storage.overlay_layer_store import OverlayLayerStore
from domain.errors import FailedPrecondition
from domain.images import ImageService
from domain.registries_conf import parse_registries_conf
from tests.fakes.signatures import trust_with
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.storage_fixtures import mounts_under, tree, unmount_all_under


@pytest.fixture
def service(registry: RunningRegistry, tmp_path: Path) -> Iterator[ImageService]:
    conf = parse_registries_conf(registries_conf_text(registry), "test")
    adapter = HttpRegistry(lambda: conf)
    layers = OverlayLayerStore(tmp_path / "storage", AtomicFileStateStore(tmp_path / "state"))
    images = StateImageStore(AtomicFileStateStore(tmp_path / "state"))
    try:
        yield ImageService(
            adapter, layers, images, RootfsImageUsers(layers), trust_with(adapter), platform=host_platform()
        )
    finally:
        adapter.close()
        unmount_all_under(tmp_path)


def run_in(rootfs: Path, *command: str) -> str:
    done = subprocess.run(["chroot", str(rootfs), *command], capture_output=True, timeout=60, check=True)
    return done.stdout.decode()


def test_a_pulled_image_runs_in_its_rootfs_and_leaves_nothing(
    service: ImageService, pushed_images: PushedImages, tmp_path: Path
) -> None:
    image = pushed_images.multilayer
    image_id = service.pull(image.reference)
    rootfs = service.create_rootfs("ctr-1", image.reference)
    assert rootfs.image.id == image_id
    listing = run_in(rootfs.path, "/bin/sh", "-c", "ls /data; ls /opaque; cat /data/c; echo x > /written")
    assert listing.split() == ["b", "c", "dir", "hard-b", "link-to-b", "new", "c"]
    assert (tmp_path / "storage" / "containers" / "ctr-1" / "upper" / "written").read_text() == "x\n"

    with pytest.raises(FailedPrecondition, match="ctr-1"):
        service.remove(image_id)
    service.unmount_rootfs("ctr-1")
    assert mounts_under(tmp_path) == []
    again = service.create_rootfs("ctr-1", image_id)
    assert run_in(again.path, "/bin/cat", "/written") == "x\n"

    service.remove_rootfs("ctr-1")
    service.remove(image_id)
    assert service.list_images() == []
    assert mounts_under(tmp_path) == []
    for part in ("layers", "l", "containers", "tmp"):
        assert tree(tmp_path / "storage" / part) == set(), part


def test_the_image_user_and_config_reach_container_creation(
    service: ImageService, pushed_images: PushedImages
) -> None:
    busybox = pushed_images.busybox
    service.pull(busybox.reference)
    rootfs = service.create_rootfs("ctr-2", busybox.reference)
    config = rootfs.image.config
    assert config.entrypoint == ("/bin/sh", "-c")
    assert config.working_dir == "/root" and config.volumes == ("/data",) and config.stop_signal == "SIGUSR1"
    assert "GREETING=hello" in config.env
    assert config.labels == {"org.pycrio.test": "busybox"}
    assert run_in(rootfs.path, "/bin/sh", "-c", "echo $((6 * 7))").strip() == "42"
    service.remove_rootfs("ctr-2")
    service.remove(busybox.reference)

"""A pull that fills the image store's file system, through the daemon and a registry on 127.0.0.1.

The daemon's root (layers and state) is a small tmpfs and `image.min_free_bytes` is 0, so the unpack meets
ENOSPC itself: PullImage must answer RESOURCE_EXHAUSTED saying so, keep nothing of the image, and pull an
image that fits right after.
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.daemon import Daemon
from tests.fixtures.images import file, image_config, make_layer, push_image
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.storage_fixtures import tree, unmount_all_under

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "pctest-pullfull", str(mount)], check=True)
    try:
        yield mount
    finally:
        unmount_all_under(mount)
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_pull_onto_a_full_disk_is_resource_exhausted_keeps_nothing_and_the_next_one_works(
    registry: RunningRegistry, tmp_path: Path, disk: Path
) -> None:
    repository = f"pctest/full-{uuid.uuid4().hex[:8]}"
    big_layer = make_layer([file("data", os.urandom(24 << 20))])  # incompressible, larger than the disk
    small_layer = make_layer([file("data", b"fits")])
    pusher = Pusher(registry)
    try:
        big = push_image(pusher, repository, "big", [big_layer], image_config([big_layer]))
        small = push_image(pusher, repository, "small", [small_layer], image_config([small_layer]))
    finally:
        pusher.close()
    conf = tmp_path / "registries.conf"
    conf.write_text(registries_conf_text(registry))
    (tmp_path / "registries.conf.d").mkdir()
    daemon = Daemon(
        tmp_path / "pycrio",
        [
            f'runtime.root="{disk / "root"}"',
            "image.min_free_bytes=0",
            f'image.registries_conf="{conf}"',
            f'image.registries_conf_dir="{tmp_path / "registries.conf.d"}"',
            f'network.cni_conf_dir="{tmp_path}"',
        ],
    ).start()
    try:
        with pytest.raises(grpc.RpcError) as caught:
            daemon.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=f"{big.name}:big")))
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
        assert "No space left" in caught.value.details()
        assert list(daemon.client.image.ListImages(pb.ListImagesRequest()).images) == []
        storage = disk / "root" / "storage"
        assert tree(storage / "tmp") == set()
        assert tree(storage / "layers") == set()
        request = pb.PullImageRequest(image=pb.ImageSpec(image=f"{small.name}:small"))
        assert daemon.client.image.PullImage(request).image_ref  # the daemon pulls on
    finally:
        daemon.stop()

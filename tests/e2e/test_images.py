"""Images through the real daemon: every fixture image pulled from a real registry on 127.0.0.1 over gRPC,
listed, inspected, its unpacked layers checked through an overlay mount, removed; hostile images refused
with nothing written outside the store; nothing of any of them left afterwards.

Mirrors cri-tools' `pkg/validate/image.go`: tag, no tag, digest, all kinds of references, USER, three
tags of one image, one image from two registry names, removal by one tag, the 1 ms deadline.
"""

import base64
import contextlib
import hashlib
import itertools
import json
import os
import subprocess
import tarfile
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from domain.image_config import chain_ids
from tests.e2e.daemon import Daemon
from tests.fixtures.images import (
    OCI_LAYER,
    Layer,
    PushedImage,
    PushedImages,
    file,
    image_config,
    make_layer,
    push_image,
)
from tests.fixtures.push import Pusher
from tests.fixtures.registry import RunningRegistry, registries_conf_text
from tests.storage_fixtures import mounts_under, tree, unmount_all_under

ALIAS = "alias.test"
GOOD = ["busybox", "oci", "multilayer", "zstd", "user", "multiarch_oci", "multiarch_docker", "digest_only"]
HOSTILE = [
    "traversal",
    "absolute",
    "symlink-escape",
    "hardlink-escape",
    "symlinked-dir",
    "hardlink-through-symlink",
]


@pytest.fixture(scope="module")
def image_daemon(
    registry: RunningRegistry,
    basic_auth_registry: RunningRegistry,
    token_auth_registry: RunningRegistry,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Daemon]:
    """One daemon for the module; short names search the anonymous test registry, the auth registries are
    reachable by full name, and `alias.test/...` names reach the anonymous one too (the same image under a
    second registry name)."""
    workdir = tmp_path_factory.mktemp("images-e2e")
    conf = workdir / "registries.conf"
    conf.write_text(
        registries_conf_text(registry)
        + registries_conf_text(basic_auth_registry, token_auth_registry, search=False)
        + f'\n[[registry]]\nprefix = "{ALIAS}"\nlocation = "{registry.host}"\ninsecure = true\n'
    )
    (workdir / "registries.conf.d").mkdir()
    running = Daemon(
        workdir / "pycrio",
        [
            f'image.registries_conf="{conf}"',
            f'image.registries_conf_dir="{workdir / "registries.conf.d"}"',
            f'image.pinned_images=["{registry.host}/pycrio/user*"]',
            f'network.cni_conf_dir="{workdir}"',
        ],
    ).start()
    try:
        yield running
    finally:
        running.stop()
        unmount_all_under(workdir)


def storage(daemon: Daemon) -> Path:
    return daemon.workdir / "root" / "storage"


def pull(daemon: Daemon, name: str, timeout: float = 120, auth: pb.AuthConfig | None = None) -> str:
    request = pb.PullImageRequest(image=pb.ImageSpec(image=name), auth=auth)
    return str(daemon.client.image.PullImage(request, timeout=timeout).image_ref)


def status(daemon: Daemon, name: str, verbose: bool = False) -> pb.ImageStatusResponse:
    reply: pb.ImageStatusResponse = daemon.client.image.ImageStatus(
        pb.ImageStatusRequest(image=pb.ImageSpec(image=name), verbose=verbose)
    )
    return reply


def remove(daemon: Daemon, name: str) -> None:
    daemon.client.image.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=name)))


def listed_ids(daemon: Daemon) -> list[str]:
    return [image.id for image in daemon.client.image.ListImages(pb.ListImagesRequest()).images]


def amd64(image: PushedImage) -> PushedImage:
    """The image a linux/amd64 host pulls (the platform's manifest when `image` is an index)."""
    return image.platforms.get("linux/amd64", image)


def layer_dirs(daemon: Daemon, image: PushedImage) -> list[Path]:
    diff_ids = amd64(image).config["rootfs"]["diff_ids"]
    return [storage(daemon) / "layers" / chain.removeprefix("sha256:") for chain in chain_ids(diff_ids)]


@contextlib.contextmanager
def overlay_view(layers: list[Path], target: Path) -> Iterator[Path]:
    """A read-only overlay of the daemon's layer dirs, to see the image as a container would."""
    target.mkdir(parents=True, exist_ok=True)
    # overlayfs wants two lower dirs when there is no upper one: an empty one goes at the bottom.
    bottom = target.parent / f"{target.name}-empty"
    bottom.mkdir(exist_ok=True)
    lower = ":".join(str(layer) for layer in [*reversed(layers), bottom])
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lower}", str(target)], check=True)
    try:
        yield target
    finally:
        subprocess.run(["umount", str(target)], check=True)


def good_images(images: PushedImages) -> dict[str, PushedImage]:
    return {
        "busybox": images.busybox,
        "oci": images.oci,
        "multilayer": images.multilayer,
        "zstd": images.zstd,
        "user": images.user,
        "multiarch_oci": images.multiarch_oci,
        "multiarch_docker": images.multiarch_docker,
        "digest_only": images.digest_only,
    }


@pytest.mark.parametrize("which", GOOD)
def test_pull_inspect_and_remove(
    image_daemon: Daemon, pushed_images: PushedImages, which: str, tmp_path: Path
) -> None:
    image = good_images(pushed_images)[which]
    image_ref = pull(image_daemon, image.reference)
    assert "sha256:" + image_ref == amd64(image).config_digest

    found = status(image_daemon, image.reference).image
    assert found.id == image_ref
    assert list(found.repo_tags) == ([image.reference] if image.tag else [])
    assert image.digest_reference in found.repo_digests
    assert found.size > 0
    for reference in [
        image_ref,
        f"sha256:{image_ref}",
        image_ref[:12],
        image.digest_reference,
        *found.repo_tags,
    ]:
        assert status(image_daemon, reference).image == found, reference
    assert image_ref in listed_ids(image_daemon)
    info = json.loads(status(image_daemon, image.reference, verbose=True).info["info"])
    assert info["imageSpec"]["rootfs"]["diff_ids"] == amd64(image).config["rootfs"]["diff_ids"]

    with overlay_view(layer_dirs(image_daemon, image), tmp_path / "view") as view:
        for path, kind in amd64(image).files.items():
            assert os.path.lexists(view / path), path
            assert (view / path).is_dir() == (kind == "dir") or kind == "symlink", path
        for path in amd64(image).absent:
            assert not os.path.lexists(view / path), f"{path} should be whited out"

    remove(image_daemon, image.reference)
    assert not status(image_daemon, image_ref).HasField("image")
    assert image_ref not in listed_ids(image_daemon)
    remove(image_daemon, image.reference)  # absent: still success


def test_every_fixture_image_is_covered(pushed_images: PushedImages) -> None:
    assert sorted(good_images(pushed_images).values(), key=id) == sorted(pushed_images.all_good(), key=id)
    assert sorted(pushed_images.hostile) == sorted(HOSTILE)


def test_layers_are_unpacked_with_metadata(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    image = pushed_images.user
    pull(image_daemon, image.reference)
    try:
        home = layer_dirs(image_daemon, image)[-1] / "home" / "app"
        assert (home.stat().st_uid, home.stat().st_gid) == (1000, 1000)
        found = status(image_daemon, image.reference).image
        assert found.username == "app" and not found.HasField("uid")
        assert found.pinned
    finally:
        remove(image_daemon, image.reference)


def test_whiteouts_are_overlay_whiteouts_on_disk(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    image = pushed_images.multilayer
    pull(image_daemon, image.reference)
    try:
        top = layer_dirs(image_daemon, image)[-1]
        whiteout = os.lstat(top / "data" / "a")
        assert whiteout.st_rdev == os.makedev(0, 0) and (whiteout.st_mode & 0o170000) == 0o020000
        assert os.getxattr(top / "opaque", "trusted.overlay.opaque") == b"y"
    finally:
        remove(image_daemon, image.reference)


@pytest.mark.parametrize("which", HOSTILE)
def test_hostile_images_are_refused_and_write_nothing(
    image_daemon: Daemon, pushed_images: PushedImages, which: str
) -> None:
    image = pushed_images.hostile[which]
    before = tree(storage(image_daemon) / "layers")
    with pytest.raises(grpc.RpcError) as failure:
        pull(image_daemon, image.reference)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT, failure.value.details()
    assert "layer" in str(failure.value.details())
    for path in image.escape_paths:
        assert not os.path.lexists(path), f"{image.hostile}: {path} was written"
    for path, content in image.victims.items():
        assert Path(path).read_text() == content, f"{image.hostile}: {path} was changed"
    assert not status(image_daemon, image.reference).HasField("image")
    assert tree(storage(image_daemon) / "layers") == before, "the good first layer is not kept either"
    assert tree(storage(image_daemon) / "tmp") == set()


def test_short_names_use_the_search_registries(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    image_ref = pull(image_daemon, "pycrio/busybox")
    try:
        assert status(image_daemon, "pycrio/busybox").image.id == image_ref
        assert list(status(image_daemon, "pycrio/busybox:latest").image.repo_tags) == [
            pushed_images.busybox.reference
        ]
    finally:
        remove(image_daemon, "pycrio/busybox")


def test_three_tags_of_one_image_are_one_image_removed_together(
    image_daemon: Daemon, registry: RunningRegistry, pushed_images: PushedImages
) -> None:
    image = pushed_images.busybox
    pusher = Pusher(registry)
    try:
        for tag in ("1", "2", "3"):
            pusher.manifest(image.repository, tag, image.manifest_media_type, image.manifest)
    finally:
        pusher.close()
    names = [f"{image.name}:{tag}" for tag in ("1", "2", "3")]
    assert len({pull(image_daemon, name) for name in names}) == 1
    found = status(image_daemon, names[0]).image
    assert sorted(found.repo_tags) == names
    remove(image_daemon, names[1])
    for reference in [*names, found.id]:
        assert not status(image_daemon, reference).HasField("image")


def test_one_image_from_two_registry_names(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    image = pushed_images.busybox
    alias = f"{ALIAS}/{image.repository}:{image.tag}"
    first, second = pull(image_daemon, image.reference), pull(image_daemon, alias)
    assert first == second
    assert sorted(status(image_daemon, alias).image.repo_tags) == sorted([image.reference, alias])
    remove(image_daemon, image.reference)
    assert not status(image_daemon, alias).HasField("image")


def test_concurrent_pulls_agree(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    image = pushed_images.zstd
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(pull(image_daemon, image.reference))) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert len(results) == 4 and len(set(results)) == 1
        assert listed_ids(image_daemon).count(results[0]) == 1
    finally:
        remove(image_daemon, image.reference)


def test_simultaneous_removals_all_succeed(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    image_ref = pull(image_daemon, pushed_images.multilayer.reference)
    outcomes: list[tuple[bool, bool]] = []

    def remove_and_look() -> None:
        try:
            remove(image_daemon, image_ref)
            removed = True
        except grpc.RpcError:
            removed = False
        outcomes.append((removed, status(image_daemon, image_ref).HasField("image")))

    threads = [threading.Thread(target=remove_and_look) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes == [(True, False)] * 5


def test_image_fs_usage_follows_pulls_and_removals(image_daemon: Daemon, pushed_images: PushedImages) -> None:
    def used() -> int:
        info = image_daemon.client.image.ImageFsInfo(pb.ImageFsInfoRequest())
        return int(info.image_filesystems[0].used_bytes.value)

    before = used()
    image_ref = pull(image_daemon, pushed_images.digest_only.reference)
    assert used() > before
    remove(image_daemon, image_ref)
    assert used() == before


def test_a_one_millisecond_deadline_is_deadline_exceeded(
    image_daemon: Daemon, pushed_images: PushedImages
) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        pull(image_daemon, pushed_images.oci.reference, timeout=0.001)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    remove(image_daemon, pushed_images.oci.reference)


def test_unknown_image_is_not_found(image_daemon: Daemon, registry: RunningRegistry) -> None:
    with pytest.raises(grpc.RpcError) as failure:
        pull(image_daemon, f"{registry.host}/pycrio/no-such-image:1")
    assert failure.value.code() == grpc.StatusCode.NOT_FOUND


def test_images_survive_a_restart_and_fs_info_counts_them(
    image_daemon: Daemon, pushed_images: PushedImages
) -> None:
    image = pushed_images.oci
    image_ref = pull(image_daemon, image.reference)
    before = status(image_daemon, image.reference).image
    image_daemon.stop()
    image_daemon.start()
    try:
        assert status(image_daemon, image.reference).image == before
        info = image_daemon.client.image.ImageFsInfo(pb.ImageFsInfoRequest())
        (images,) = info.image_filesystems
        assert images.fs_id.mountpoint == str(storage(image_daemon) / "layers")
        assert images.used_bytes.value > 0 and images.inodes_used.value > 0
        assert info.container_filesystems[0].fs_id.mountpoint == str(storage(image_daemon) / "containers")
    finally:
        remove(image_daemon, image_ref)


def push_small(registry: RunningRegistry, repository: str) -> PushedImage:
    layer = make_layer([file("hello", f"{repository}\n")])
    pusher = Pusher(registry)
    try:
        return push_image(pusher, repository, "v1", [layer], image_config([layer]))
    finally:
        pusher.close()


def test_basic_auth_from_the_cri_auth_config(
    image_daemon: Daemon, basic_auth_registry: RunningRegistry
) -> None:
    image = push_small(basic_auth_registry, "e2e/basic")
    with pytest.raises(grpc.RpcError) as failure:
        pull(image_daemon, image.reference)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "refused" in str(failure.value.details())
    assert not status(image_daemon, image.reference).HasField("image")
    user, password = basic_auth_registry.username, basic_auth_registry.password
    encoded = base64.b64encode(f"{user}:{password}".encode()).decode()
    for auth in (pb.AuthConfig(username=user, password=password), pb.AuthConfig(auth=encoded)):
        image_ref = pull(image_daemon, image.reference, auth=auth)
        assert "sha256:" + image_ref == image.config_digest
        remove(image_daemon, image_ref)


def test_bearer_tokens_from_the_cri_auth_config(
    image_daemon: Daemon, token_auth_registry: RunningRegistry
) -> None:
    server = token_auth_registry.token_server
    assert server is not None
    image = push_small(token_auth_registry, "e2e/token")
    token = server.issue("tokenuser", ["repository:e2e/token:pull"])
    for auth in (
        pb.AuthConfig(username=token_auth_registry.username, password=token_auth_registry.password),
        pb.AuthConfig(identity_token=next(iter(server.refresh_tokens))),
        pb.AuthConfig(registry_token=token),
    ):
        image_ref = pull(image_daemon, image.reference, auth=auth)
        assert "sha256:" + image_ref == image.config_digest
        remove(image_daemon, image_ref)


def test_zz_nothing_is_left_after_removal(image_daemon: Daemon) -> None:
    """Runs last in this module: every test removed what it pulled, so the store must be empty."""
    for image_id in listed_ids(image_daemon):
        remove(image_daemon, image_id)
    assert listed_ids(image_daemon) == []
    for part in ("layers", "l", "tmp", "containers"):
        assert tree(storage(image_daemon) / part) == set(), part
    state = image_daemon.workdir / "root" / "state"
    for kind in ("images", "layers", "rootfs"):
        assert tree(state / kind) == set(), kind
    assert mounts_under(image_daemon.workdir) == []
    assert status(image_daemon, "pycrio/busybox").image.id == ""


def _gzip_bomb(uncompressed: int) -> Layer:
    """A layer of one file of zeros: about a thousandth of its size once gzipped. Built in chunks, so the
    test holds only the compressed blob."""
    info = tarfile.TarInfo("zeros")
    info.size, info.mtime = uncompressed, 1700000000
    header = info.tobuf(tarfile.PAX_FORMAT)
    padding = -uncompressed % tarfile.BLOCKSIZE
    pieces = itertools.chain(
        [header],
        itertools.repeat(bytes(1 << 20), uncompressed >> 20),
        [bytes(padding + 2 * tarfile.BLOCKSIZE)],
    )
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    diff = hashlib.sha256()
    blob = bytearray()
    for piece in pieces:
        diff.update(piece)
        blob += compressor.compress(piece)
    blob += compressor.flush()
    data = bytes(blob)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Layer(OCI_LAYER["gzip"], data, digest, "sha256:" + diff.hexdigest(), "gzip", ())


def test_a_gzip_bomb_is_refused_and_leaves_nothing(image_daemon: Daemon, registry: RunningRegistry) -> None:
    bomb = _gzip_bomb(1 << 30)
    assert bomb.size < 2 << 20  # a 1 MiB download that would take 1 GiB on disk
    pusher = Pusher(registry)
    try:
        image = push_image(pusher, "pycrio/bomb", "v1", [bomb], image_config([bomb]))
    finally:
        pusher.close()
    before = tree(storage(image_daemon) / "layers")
    with pytest.raises(grpc.RpcError) as failure:
        pull(image_daemon, image.reference)
    assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, failure.value.details()
    assert "image.max_layer_ratio" in str(failure.value.details())
    assert tree(storage(image_daemon) / "layers") == before
    assert tree(storage(image_daemon) / "tmp") == set()
    assert not status(image_daemon, image.reference).HasField("image")

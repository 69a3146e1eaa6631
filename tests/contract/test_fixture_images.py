"""The shared test images are what they claim: reachable through the httpx adapter by tag and by digest,
with the layers, platforms and files their `PushedImage` describes, and a busybox whose shell execs real
files."""

import gzip
import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from adapters.process.runner import run
from adapters.registry.http_registry import HttpRegistry
from domain.registries_conf import RegistriesConf, RegistryTable
from ports.registry import Platform, ResolvedImage
from tests.fixtures.images import PushedImage, PushedImages
from tests.fixtures.registry import RunningRegistry
from tests.registry_sources import ConfiguredRegistry

AMD64 = Platform("linux", "amd64", "")


@pytest.fixture(scope="module")
def adapter(registry: RunningRegistry) -> Iterator[ConfiguredRegistry]:
    conf = RegistriesConf(None, (RegistryTable(registry.host, registry.host, insecure=True),))
    http = ConfiguredRegistry(HttpRegistry(timeout=10), lambda: conf)
    yield http
    http.close()


def tar_members(adapter: ConfiguredRegistry, resolved: ResolvedImage, index: int) -> list[tarfile.TarInfo]:
    blob = b"".join(adapter.open_blob(resolved, resolved.layers[index], None))
    media_type = resolved.layers[index].media_type
    if media_type.endswith("gzip"):
        blob = gzip.decompress(blob)
    elif media_type.endswith("zstd"):
        blob = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
        return archive.getmembers()


def test_every_good_image_resolves_by_tag_and_by_digest(
    adapter: ConfiguredRegistry, pushed_images: PushedImages
) -> None:
    for image in pushed_images.all_good():
        by_reference = adapter.resolve(image.reference, None, AMD64)
        by_digest = adapter.resolve(image.digest_reference, None, AMD64)
        assert by_reference.manifest_digest == by_digest.manifest_digest
        assert by_reference.repo_digest == image.digest_reference
        expected = image.platforms["linux/amd64"] if image.platforms else image
        assert by_reference.config_digest == expected.config_digest
        assert [d.digest for d in by_reference.layers] == expected.layer_digests


def test_multiarch_images_serve_both_platforms(
    adapter: ConfiguredRegistry, pushed_images: PushedImages
) -> None:
    for image in (pushed_images.multiarch_oci, pushed_images.multiarch_docker):
        arm = adapter.resolve(image.reference, None, Platform("linux", "arm64", "v8"))
        assert arm.manifest_digest == image.platforms["linux/arm64/v8"].manifest_digest
        assert b'"architecture": "arm64"' in arm.config


def test_layers_hold_the_declared_entries(adapter: ConfiguredRegistry, pushed_images: PushedImages) -> None:
    multilayer = adapter.resolve(pushed_images.multilayer.reference, None, AMD64)
    names = {m.name for m in tar_members(adapter, multilayer, 2)}
    assert {"data/.wh.a", "opaque/.wh..wh..opq", "opaque/new"} <= names
    assert "data/a" not in pushed_images.multilayer.files
    assert "data/b" in pushed_images.multilayer.files
    assert "opaque/old1" in pushed_images.multilayer.absent
    assert pushed_images.multilayer.files["opaque/new"] == "file"

    zstd = adapter.resolve(pushed_images.zstd.reference, None, AMD64)
    assert zstd.layers[1].media_type == "application/vnd.oci.image.layer.v1.tar+zstd"
    assert [m.name for m in tar_members(adapter, zstd, 1)] == ["zstd", "zstd/hello"]

    oci = adapter.resolve(pushed_images.oci.reference, None, AMD64)
    assert oci.layers[1].media_type == "application/vnd.oci.image.layer.v1.tar"


def test_user_image_names_its_user(pushed_images: PushedImages) -> None:
    assert pushed_images.user.config["config"]["User"] == "app"
    assert {"etc/passwd", "etc/group", "home/app"} <= set(pushed_images.user.files)


@pytest.mark.parametrize(
    ("name", "member"),
    [
        ("traversal", "../"),
        ("absolute", "/"),
        ("symlink-escape", "escape"),
        ("hardlink-escape", "stolen"),
        ("hardlink-through-symlink", "grab"),
        ("symlinked-dir", "etcdir/through-symlink"),
    ],
)
def test_hostile_layers_carry_their_attack(
    adapter: ConfiguredRegistry, pushed_images: PushedImages, name: str, member: str
) -> None:
    image: PushedImage = pushed_images.hostile[name]
    assert image.hostile
    resolved = adapter.resolve(image.reference, None, AMD64)
    names = [m.name for m in tar_members(adapter, resolved, 1)]
    assert any(member in n for n in names), names
    for path in image.escape_paths:
        assert not Path(path).exists()
    for path, content in image.victims.items():
        assert Path(path).read_text() == content


def test_busybox_shell_execs_real_files(
    adapter: ConfiguredRegistry, pushed_images: PushedImages, tmp_path: Path
) -> None:
    """Unpack the busybox image with tar and chroot into it: the dynamic busybox and its libc work."""
    resolved = adapter.resolve(pushed_images.busybox.reference, None, AMD64)
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(b"".join(adapter.open_blob(resolved, resolved.layers[0], None)))
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    run(["tar", "-xzf", str(blob), "-C", str(rootfs)], timeout=60)
    (rootfs / "usr/bin/marker").write_text("#!/bin/sh\necho exec-ok\n")
    (rootfs / "usr/bin/marker").chmod(0o755)
    result = run(["chroot", str(rootfs), "/bin/sh", "-c", "PATH=/usr/bin:/bin marker"], timeout=30)
    assert result.stdout.decode().strip() == "exec-ok"
    assert pushed_images.busybox.config["config"]["StopSignal"] == "SIGUSR1"

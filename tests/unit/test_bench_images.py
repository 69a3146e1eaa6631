"""The bench's locally built images: deterministic, the size they claim, valid OCI."""

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from bench import images
from bench.profiles import QUICK, SHORT

SMALL = 64 * 1024


def layer_members(blob: images.Blob) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.path.read_bytes()))) as archive:
        return archive.getmembers()


def test_tar_bytes_depends_only_on_entries() -> None:
    entries = [images.TarEntry("b/file", data=b"x"), images.TarEntry("a", kind="dir", mode=0o755)]
    first = images.tar_bytes(entries)
    assert first == images.tar_bytes(list(reversed(entries)))
    with tarfile.open(fileobj=io.BytesIO(first)) as archive:
        members = archive.getmembers()
    assert [member.name for member in members] == ["a", "b/file"]
    assert all(member.mtime == 0 and member.uid == 0 for member in members)


def test_gzip_bytes_is_deterministic() -> None:
    assert images.gzip_bytes(b"data" * 100) == images.gzip_bytes(b"data" * 100)


def test_random_image_is_the_same_on_every_build(tmp_path: Path) -> None:
    spec = images.random_spec("seed-a", layers=8, layer_bytes=SMALL)
    first = images.build(spec, tmp_path / "one")
    second = images.build(images.random_spec("seed-a", layers=8, layer_bytes=SMALL), tmp_path / "two")
    assert first.manifest_digest == second.manifest_digest
    assert [layer.digest for layer in first.layers] == [layer.digest for layer in second.layers]


def test_different_seeds_give_different_layers(tmp_path: Path) -> None:
    first = images.build(images.random_spec("seed-a", layers=2, layer_bytes=SMALL), tmp_path)
    second = images.build(images.random_spec("seed-b", layers=2, layer_bytes=SMALL), tmp_path)
    assert not {layer.digest for layer in first.layers} & {layer.digest for layer in second.layers}


def test_random_layers_do_not_compress(tmp_path: Path) -> None:
    image = images.build(images.random_spec("seed-a", layers=8, layer_bytes=SMALL), tmp_path)
    assert len(image.layers) == 8
    for layer in image.layers:
        assert layer.size >= SMALL  # gzip could not shrink random bytes
    assert image.compressed_bytes >= 8 * SMALL
    assert image.uncompressed_bytes >= 8 * SMALL


def test_manifest_config_and_blobs_agree(tmp_path: Path) -> None:
    image = images.build(images.random_spec("seed-a", layers=3, layer_bytes=SMALL), tmp_path)
    manifest = json.loads(image.manifest)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == images.MANIFEST_TYPE
    assert manifest["config"]["digest"] == image.config.digest
    for blob in image.blobs():
        data = blob.path.read_bytes()
        assert blob.digest == "sha256:" + hashlib.sha256(data).hexdigest()
        assert blob.size == len(data)
    config = json.loads(image.config.path.read_bytes())
    assert config["os"] == "linux" and config["architecture"] == images.oci_arch()
    diff_ids = [images.sha256_digest(gzip.decompress(layer.path.read_bytes())) for layer in image.layers]
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}


def test_a_cached_build_is_reused(tmp_path: Path) -> None:
    spec = images.random_spec("seed-a", layers=1, layer_bytes=SMALL)
    images.build(spec, tmp_path)
    index = tmp_path / spec.cache_key() / "image.json"
    before = index.stat().st_mtime_ns
    images.build(spec, tmp_path)
    assert index.stat().st_mtime_ns == before


def test_the_default_pull_image_is_about_200_mb_in_8_layers() -> None:
    spec = images.random_spec("x")
    assert len(spec.layers) == 8
    assert spec.key_inputs["layer_bytes"] * 8 == 200 * images.MIB
    assert SHORT.pull_layers * SHORT.pull_layer_bytes == 200 * images.MIB
    assert QUICK.pull_layers == 8


def test_busybox_image_holds_busybox_its_applets_and_libraries(tmp_path: Path) -> None:
    image = images.build(images.busybox_spec(), tmp_path)
    (layer,) = image.layers
    members = {member.name: member for member in layer_members(layer)}
    assert members["bin/busybox"].mode & 0o111
    assert members["bin/sleep"].issym() and members["bin/sleep"].linkname == "busybox"
    assert members["bin/echo"].issym()
    for library in images.shared_libraries(Path("/bin/busybox")):
        assert str(library).lstrip("/") in members
    config = json.loads(image.config.path.read_bytes())
    assert config["config"]["Cmd"] == ["sleep", "3600"]


def test_pause_image_runs_catatonit_in_pause_mode(tmp_path: Path) -> None:
    image = images.build(images.pause_spec(), tmp_path)
    names = {member.name for member in layer_members(image.layers[0])}
    assert "catatonit" in names
    config = json.loads(image.config.path.read_bytes())
    assert config["config"]["Entrypoint"] == ["/catatonit", "-P"]


@pytest.mark.parametrize("machine,arch", [("x86_64", "amd64"), ("aarch64", "arm64"), ("riscv64", "riscv64")])
def test_oci_arch_names(monkeypatch: pytest.MonkeyPatch, machine: str, arch: str) -> None:
    monkeypatch.setattr("platform.machine", lambda: machine)
    assert images.oci_arch() == arch

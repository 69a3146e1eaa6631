"""The CheckpointArchives contract over the fake and the tar adapter, and what only real archives carry:
overlayfs whiteouts and opaque directories, cri-o's layout, and archives built to write outside the rootfs."""

import io
import json
import os
import stat
import tarfile
from pathlib import Path

import pytest

from adapters.checkpoint.tar_archives import TarCheckpointArchives
from domain.errors import InvalidArgument
from ports.checkpoints import CRIU_IMAGES, CheckpointArchives, CheckpointDumps
from tests.fakes.checkpoints import FakeCheckpointArchives

DUMPS = CheckpointDumps(
    config={"id": "c1", "name": "counter", "rootfsImageRef": "img1"},
    spec={"process": {"args": ["/bin/sh"]}, "mounts": [{"destination": "/etc/hostname", "type": "bind"}]},
)


@pytest.fixture(params=["fake", "tar"])
def archives(request: pytest.FixtureRequest, tmp_path: Path) -> CheckpointArchives:
    if request.param == "fake":
        return FakeCheckpointArchives(tmp_path / "work")
    return TarCheckpointArchives(tmp_path / "work")


def dumped(archives: CheckpointArchives, container_id: str) -> Path:
    """A work directory as a runtime leaves it after a dump."""
    work = archives.prepare(container_id)
    (work / CRIU_IMAGES / "inventory.img").write_bytes(b"\x01inventory")
    (work / CRIU_IMAGES / "pages-1.img").write_bytes(bytes(range(256)) * 64)
    return work


def layer_with_changes(tmp_path: Path) -> Path:
    layer = tmp_path / "upper"
    (layer / "etc").mkdir(parents=True)
    (layer / "etc" / "counter").write_text("41\n")
    (layer / "etc" / "hostname").write_text("")  # a bind mount point: left out
    return layer


def test_prepare_gives_a_fresh_work_directory(archives: CheckpointArchives) -> None:
    work = dumped(archives, "c1")
    again = archives.prepare("c1")
    assert again == work and list(again.iterdir()) == [work / CRIU_IMAGES]
    assert list((work / CRIU_IMAGES).iterdir()) == []


def test_an_archive_carries_dumps_images_and_file_changes(
    archives: CheckpointArchives, tmp_path: Path
) -> None:
    dumped(archives, "c1")
    location = tmp_path / "checkpoint.tar"
    archives.export("c1", str(location), DUMPS, str(layer_with_changes(tmp_path)), {"/etc/hostname"}, "")
    assert stat.S_IMODE(location.stat().st_mode) == 0o600  # every memory page of the processes is in it
    assert archives.read_dumps(str(location)) == DUMPS

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "hostname").write_text("image's own\n")
    images = archives.unpack("c2", str(location), str(rootfs))
    assert (images / "inventory.img").read_bytes() == b"\x01inventory"
    assert (images / "pages-1.img").read_bytes() == bytes(range(256)) * 64
    assert (rootfs / "etc" / "counter").read_text() == "41\n"
    assert (rootfs / "etc" / "hostname").read_text() == "image's own\n"

    archives.remove("c2")
    archives.remove("c2")
    assert not images.exists()


def test_what_is_not_a_checkpoint_archive_is_invalid_argument(
    archives: CheckpointArchives, tmp_path: Path
) -> None:
    with pytest.raises(InvalidArgument, match=r"image.image: .*not found"):
        archives.read_dumps(str(tmp_path / "absent.tar"))
    foreign = tmp_path / "foreign.tar"
    foreign.write_bytes(b"no archive here" * 100)
    with pytest.raises(InvalidArgument, match=r"image.image"):
        archives.read_dumps(str(foreign))
    with pytest.raises(InvalidArgument, match=r"image.image"):
        archives.unpack("c3", str(foreign), str(tmp_path))


def test_a_location_that_cannot_be_written_is_invalid_argument(
    archives: CheckpointArchives, tmp_path: Path
) -> None:
    dumped(archives, "c1")
    layer = str(layer_with_changes(tmp_path))
    with pytest.raises(InvalidArgument, match=r"location: .*cannot be written"):
        archives.export("c1", str(tmp_path / "no-such-dir" / "cp.tar"), DUMPS, layer, (), "")
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "link.tar").symlink_to(victim)
    with pytest.raises(InvalidArgument, match=r"location: .*cannot be written"):
        archives.export("c1", str(tmp_path / "link.tar"), DUMPS, layer, (), "")
    assert victim.read_text() == "keep"


# -- the tar adapter only ----------------------------------------------------------------------------------


def test_deleted_files_and_opaque_directories_come_back_deleted(tmp_path: Path) -> None:
    archives = TarCheckpointArchives(tmp_path / "work")
    dumped(archives, "c1")
    layer = layer_with_changes(tmp_path)
    os.mknod(layer / "etc" / "motd", stat.S_IFCHR | 0o000, os.makedev(0, 0))  # overlayfs: deleted
    (layer / "cache").mkdir()
    os.setxattr(layer / "cache", "trusted.overlay.opaque", b"y")  # overlayfs: lower contents hidden
    (layer / "cache" / "new").write_text("new")
    location = tmp_path / "cp.tar"
    log = tmp_path / "0.log"
    log.write_text("2026-01-01T00:00:00Z stdout F 41\n")
    archives.export("c1", str(location), DUMPS, str(layer), {"/etc/hostname"}, str(log))

    with tarfile.open(location) as archive:
        names = set(archive.getnames())
        deleted = json.loads(archive.extractfile("deleted.files").read())  # type: ignore[union-attr]
    # cri-o's and checkpointctl's layout
    assert {
        "config.dump",
        "spec.dump",
        "rootfs-diff.tar",
        "deleted.files",
        "checkpoint/inventory.img",
    } <= names
    assert "io.kubernetes.cri-o.LogPath" in names
    assert sorted(deleted) == ["/cache", "/etc/motd"]

    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc" / "motd").write_text("from the image")
    (rootfs / "cache").mkdir()
    (rootfs / "cache" / "old").write_text("from the image")
    archives.unpack("c2", str(location), str(rootfs))
    assert not (rootfs / "etc" / "motd").exists()
    assert not (rootfs / "cache" / "old").exists()
    assert (rootfs / "cache" / "new").read_text() == "new"
    assert (rootfs / "etc" / "counter").read_text() == "41\n"


def _archive(tmp_path: Path, diff_members: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    """A checkpoint archive whose rootfs diff holds exactly `diff_members`."""
    diff = io.BytesIO()
    with tarfile.open(fileobj=diff, mode="w") as out:
        for info, data in diff_members:
            out.addfile(info, io.BytesIO(data) if data else None)
    location = tmp_path / "crafted.tar"
    with tarfile.open(location, "w") as out:
        for name, data in (
            ("config.dump", json.dumps(DUMPS.config).encode()),
            ("spec.dump", json.dumps(DUMPS.spec).encode()),
            ("checkpoint/inventory.img", b"inv"),
            ("rootfs-diff.tar", diff.getvalue()),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return location


def _member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data)
    info.linkname = link
    return info, data


def test_an_archive_cannot_write_outside_the_rootfs(tmp_path: Path) -> None:
    archives = TarCheckpointArchives(tmp_path / "work")
    outside = tmp_path / "outside"
    outside.mkdir()
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    host_file = outside / "shadow"
    host_file.write_text("host")
    # An absolute link in the image resolves on the host: a file written at its path replaces the link.
    (rootfs / "etc" / "mtab").symlink_to(host_file)
    archives.unpack("c1", str(_archive(tmp_path, [_member("etc/mtab", data=b"container")])), str(rootfs))
    assert host_file.read_text() == "host"
    assert (rootfs / "etc" / "mtab").read_text() == "container" and not (rootfs / "etc" / "mtab").is_symlink()

    crafted = [
        [_member("../escape", data=b"x")],
        [_member("evil", tarfile.SYMTYPE, link=str(outside)), _member("evil/planted", data=b"x")],
        [_member("hard", tarfile.LNKTYPE, link="../../outside/shadow")],
    ]
    for members in crafted:
        with pytest.raises(InvalidArgument, match=r"image.image"):
            archives.unpack("c1", str(_archive(tmp_path, members)), str(rootfs))
    assert sorted(p.name for p in outside.iterdir()) == ["shadow"] and host_file.read_text() == "host"

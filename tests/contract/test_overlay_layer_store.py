"""What only the real overlay store can show, as root on a real file system: the files themselves.

Unpacked metadata (owners, modes, mtimes, xattrs, devices), whiteouts as overlayfs sees them, what a
hostile layer leaves on disk (nothing, anywhere), recovery after a crash, and mounts cleaned up.
"""

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.namespaces.pinned import PinnedNamespaces
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.limits import UnpackLimits
from adapters.storage.overlay_layer_store import OverlayLayerStore
from domain.errors import InvalidArgument, ResourceExhausted
from domain.id_mappings import IdMapping, UserNamespace
from ports.layer_store import LayerIdmap
from ports.namespaces import NamespaceRequest
from tests.contract.test_layer_store import HOSTILE, chunks, escaped
from tests.layer_tars import chardev, directory, fifo, file, hardlink, layer, symlink
from tests.storage_fixtures import mounts_under, tree, unmount_all_under


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    unmount_all_under(tmp_path)


def make_store(root: Path) -> OverlayLayerStore:
    return OverlayLayerStore(root / "storage", AtomicFileStateStore(root / "state"))


def test_metadata_is_unpacked_as_root(root: Path) -> None:
    store = make_store(root)
    item = layer(
        [
            directory("srv", mode=0o710, uid=33, gid=34, mtime=1_500_000_000),
            file("srv/tool", b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1001, mtime=1_400_000_000),
            hardlink("srv/tool-link", "srv/tool"),
            symlink("srv/sh", "/bin/sh"),
            chardev("dev/null", 1, 3),
            fifo("run/pipe"),
            file("caps", b"x", xattrs={"user.note": "kept", "trusted.overlay.redirect": "/etc"}),
        ]
    )
    chain = store.unpack("", item.diff_id, chunks(item.blob), "image:a").chain_id
    diff = root / "storage" / "layers" / chain.removeprefix("sha256:")
    srv = os.lstat(diff / "srv")
    assert (stat.S_IMODE(srv.st_mode), srv.st_uid, srv.st_gid, srv.st_mtime) == (0o710, 33, 34, 1_500_000_000)
    tool = os.lstat(diff / "srv/tool")
    assert (stat.S_IMODE(tool.st_mode), tool.st_uid, tool.st_gid) == (0o4755, 1000, 1001)
    assert tool.st_mtime == 1_400_000_000
    assert os.lstat(diff / "srv/tool-link").st_ino == tool.st_ino
    assert os.readlink(diff / "srv/sh") == "/bin/sh"
    null = os.lstat(diff / "dev/null")
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and os.minor(null.st_rdev) == 3
    assert stat.S_ISFIFO(os.lstat(diff / "run/pipe").st_mode)
    assert os.getxattr(diff / "caps", "user.note") == b"kept"
    assert "trusted.overlay.redirect" not in os.listxattr(diff / "caps")


def test_whiteouts_become_overlay_whiteouts_and_hide_lower_files(root: Path) -> None:
    store = make_store(root)
    base = layer([file("etc/motd", b"hi"), file("etc/keep", b"k"), file("opt/a/old", b"o"), file("x", b"1")])
    top = layer(
        [file("etc/.wh.motd"), directory("opt/a"), file("opt/a/.wh..wh..opq"), file("opt/a/new", b"n")]
    )
    first = store.unpack("", base.diff_id, chunks(base.blob), "image:a").chain_id
    second = store.unpack(first, top.diff_id, chunks(top.blob), "image:a").chain_id
    diff = root / "storage" / "layers" / second.removeprefix("sha256:")
    whiteout = os.lstat(diff / "etc/motd")
    assert stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == os.makedev(0, 0)
    assert os.getxattr(diff / "opt/a", "trusted.overlay.opaque") == b"y"
    assert not (diff / "opt/a/.wh..wh..opq").exists()

    merged = store.create_rootfs("c1", [first, second], "img")
    assert sorted(os.listdir(merged / "etc")) == ["keep"]
    assert sorted(os.listdir(merged / "opt/a")) == ["new"]
    (merged / "x").write_text("changed")
    (merged / "written").write_text("w")
    upper = root / "storage" / "containers" / "c1" / "upper"
    assert (upper / "written").read_text() == "w"
    assert (root / "storage" / "layers" / first.removeprefix("sha256:") / "x").read_text() == "1"
    assert store.usage().container_layers.used_bytes > 0

    store.unmount_rootfs("c1")
    assert mounts_under(root) == []
    merged = store.create_rootfs("c1", [first, second], "img")
    assert (merged / "written").read_text() == "w", "the writable layer survives an unmount"
    store.remove_rootfs("c1")
    assert mounts_under(root) == []
    assert not (root / "storage" / "containers" / "c1").exists()


def test_an_image_without_layers_still_gets_a_rootfs(root: Path) -> None:
    store = make_store(root)
    merged = store.create_rootfs("empty", [], "img")
    (merged / "f").write_text("x")
    store.remove_rootfs("empty")
    assert mounts_under(root) == []


@pytest.mark.parametrize("entries", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_layer_writes_nothing_anywhere(root: Path, entries: list[object]) -> None:
    # The store sits deep enough that each escape attempt would land inside `root` where we can see it.
    deep = root / "a" / "b" / "c"
    deep.mkdir(parents=True)
    store = OverlayLayerStore(deep / "storage", AtomicFileStateStore(root / "state"))
    before = tree(root)
    item = layer(entries)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        store.unpack("", item.diff_id, chunks(item.blob), "image:a")
    assert tree(root) == before
    assert escaped() == []


def test_a_later_entry_replaces_an_earlier_one(root: Path) -> None:
    store = make_store(root)
    item = layer(
        [
            directory("d"),
            file("d/f", b"x"),
            file("d", b"now a file"),
            symlink("s", "target"),
            directory("s"),
            file("s/inside", b"i"),
        ]
    )
    chain = store.unpack("", item.diff_id, chunks(item.blob), "image:a").chain_id
    diff = root / "storage" / "layers" / chain.removeprefix("sha256:")
    assert (diff / "d").read_bytes() == b"now a file"
    assert (diff / "s").is_dir() and not (diff / "s").is_symlink()
    assert (diff / "s/inside").read_bytes() == b"i"


def test_restart_keeps_layers_and_drops_crash_leftovers(root: Path) -> None:
    store = make_store(root)
    item = layer([file("a", b"1")])
    chain = store.unpack("", item.diff_id, chunks(item.blob), "image:a").chain_id
    (root / "storage" / "tmp" / "unpack-crashed").mkdir()
    orphan = root / "storage" / "layers" / ("f" * 64)
    orphan.mkdir()
    again = make_store(root)
    found = again.get(chain)
    assert found is not None and found.holders == {"image:a"}
    assert list((root / "storage" / "tmp").iterdir()) == []
    assert not orphan.exists()
    merged = again.create_rootfs("c1", [chain], "img")
    assert (merged / "a").read_text() == "1"
    again.remove_rootfs("c1")
    again.release(chain, "image:a")
    assert tree(root / "storage" / "layers") == set()
    assert tree(root / "storage" / "l") == set()


# 300 layers: more than mount(2)'s one page of options names (about 170), given one by one with fsconfig.
@pytest.mark.parametrize("count", [100, 300])
def test_many_layers_fit_in_one_mount(root: Path, count: int) -> None:
    store = make_store(root)
    parent, stack = "", []
    for index in range(count):
        item = layer([file(f"f{index}", str(index).encode())], "none")
        parent = store.unpack(parent, item.diff_id, chunks(item.blob), "image:a").chain_id
        stack.append(parent)
    merged = store.create_rootfs("c1", stack, "img")
    assert len(os.listdir(merged)) == count
    assert (merged / "f0").read_bytes() == b"0"
    store.remove_rootfs("c1")


def test_a_restarted_store_keeps_and_remounts_container_rootfs(root: Path) -> None:
    store = make_store(root)
    item = layer([file("a", b"1")])
    chain = store.unpack("", item.diff_id, chunks(item.blob), "image:a").chain_id
    merged = store.create_rootfs("c1", [chain], "img")
    (merged / "kept").write_text("k")

    restarted = make_store(root)
    found = restarted.rootfs("c1")
    assert found is not None and found.mounted and found.image_id == "img"
    subprocess.run(["umount", str(merged)], check=True)  # what a reboot does to the mount

    rebooted = make_store(root)
    found = rebooted.rootfs("c1")
    assert found is not None and not found.mounted
    assert rebooted.create_rootfs("c1", [chain], "img") == merged
    assert (merged / "kept").read_text() == "k" and (merged / "a").read_text() == "1"
    rebooted.remove_rootfs("c1")
    rebooted.release(chain, "image:a")
    assert mounts_under(root) == [] and tree(root / "storage" / "layers") == set()


@pytest.fixture
def small_disk(root: Path) -> Iterator[Path]:
    """A 24 MiB tmpfs: a disk that fills up."""
    disk = root / "small"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _store_on(disk: Path, root: Path, limits: UnpackLimits) -> OverlayLayerStore:
    return OverlayLayerStore(disk / "storage", AtomicFileStateStore(root / "state"), limits=limits)


def test_a_full_disk_stops_an_unpack_cleanly(root: Path, small_disk: Path) -> None:
    big = layer([file("data", os.urandom(40 << 20))])  # incompressible, larger than the disk
    store = _store_on(small_disk, root, UnpackLimits(min_free_bytes=0))
    with pytest.raises(ResourceExhausted, match="No space left"):
        store.unpack("", big.diff_id, chunks(big.blob, 1 << 20), "image:a")
    assert tree(small_disk / "storage" / "tmp") == set()
    assert tree(small_disk / "storage" / "layers") == set()
    assert store.list_layers() == []


def test_a_full_disk_refuses_a_writable_layer_cleanly(root: Path, small_disk: Path) -> None:
    small = layer([file("data", b"fits")])
    store = _store_on(small_disk, root, UnpackLimits(min_free_bytes=0))
    store.unpack("", small.diff_id, chunks(small.blob), "image:a")

    def inodes(count: int) -> None:
        options = f"remount,nr_inodes={count}"
        subprocess.run(["mount", "-o", options, str(small_disk)], check=True)

    used = os.statvfs(small_disk).f_files - os.statvfs(small_disk).f_ffree
    inodes(used + 2)  # room for the container's dir and one more, not for upper, work and merged
    with pytest.raises(ResourceExhausted, match=r"no space left for the writable layer of container c1 in "):
        store.create_rootfs("c1", [small.diff_id], "image:a")
    assert tree(small_disk / "storage" / "containers") == set()
    assert mounts_under(small_disk / "storage") == []
    inodes(used + 1000)
    store.create_rootfs("c1", [small.diff_id], "image:a")  # space is back
    store.remove_rootfs("c1")


def test_an_unpack_keeps_the_configured_free_space(root: Path, small_disk: Path) -> None:
    big = layer([file("data", os.urandom(20 << 20))])
    store = _store_on(small_disk, root, UnpackLimits(min_free_bytes=12 << 20))
    with pytest.raises(ResourceExhausted, match=r"image\.min_free_bytes"):
        store.unpack("", big.diff_id, chunks(big.blob, 1 << 20), "image:a")
    assert tree(small_disk / "storage" / "tmp") == set()
    small = layer([file("data", b"fits")])
    store.unpack("", small.diff_id, chunks(small.blob), "image:a")  # a layer that fits still does


def test_a_layer_over_the_size_cap_is_refused_and_leaves_nothing(root: Path) -> None:
    big = layer([file("data", os.urandom(3 << 20))])
    store = OverlayLayerStore(
        root / "storage", AtomicFileStateStore(root / "state"), limits=UnpackLimits(max_layer_bytes=2 << 20)
    )
    with pytest.raises(ResourceExhausted, match=r"image\.max_layer_bytes"):
        store.unpack("", big.diff_id, chunks(big.blob, 1 << 20), "image:a")
    assert tree(root / "storage" / "tmp") == set()
    assert store.list_layers() == []


def test_an_idmapped_rootfs_shows_the_layers_owners_shifted_into_the_pod_s_user_namespace(root: Path) -> None:
    store = make_store(root)
    base = layer([directory("etc", uid=0, gid=0), file("etc/passwd", b"root", uid=0, gid=0),
                  file("home/www/index", b"w", uid=33, gid=34)])  # fmt: skip
    chain = store.unpack("", base.diff_id, chunks(base.blob), "image:a").chain_id
    pins = PinnedNamespaces(root / "run", timeout=30)
    userns = UserNamespace(uids=(IdMapping(0, 458752, 65536),), gids=(IdMapping(0, 524288, 65536),))
    made = pins.create("pod1", NamespaceRequest(user_namespace=userns))
    try:
        merged = store.create_rootfs("c1", [chain], "img", LayerIdmap(made.user, 458752, 524288))
        # The host sees the mapped ids; a process in the user namespace sees 0 and 33 again.
        owners = {p: (os.lstat(merged / p).st_uid, os.lstat(merged / p).st_gid) for p in ("", "etc/passwd")}
        assert owners == {"": (458752, 524288), "etc/passwd": (458752, 524288)}
        index = os.lstat(merged / "home/www/index")
        assert (index.st_uid, index.st_gid) == (458752 + 33, 524288 + 34)
        # The shared layer itself is untouched, and the temporary idmapped binds are gone.
        assert (
            os.lstat(root / "storage" / "layers" / chain.removeprefix("sha256:") / "etc/passwd").st_uid == 0
        )
        assert [m for m in mounts_under(root) if "/lower/" in m] == []
        # A copy-up keeps the shifted owner in the writable layer.
        (merged / "etc/passwd").write_text("changed")
        assert os.lstat(root / "storage" / "containers" / "c1" / "upper" / "etc/passwd").st_uid == 458752
        store.remove_rootfs("c1")
        assert not (root / "storage" / "containers" / "c1").exists()
        assert (
            root / "storage" / "layers" / chain.removeprefix("sha256:") / "etc/passwd"
        ).read_text() == "root"
    finally:
        pins.remove("pod1")

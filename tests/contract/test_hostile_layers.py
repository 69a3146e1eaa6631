"""Layers shaped to exhaust rather than escape, against the real overlay store on real files.

Each test builds a layer no image builder writes (a tree 2000 directories deep, names past PATH_MAX, a
20 GiB sparse file in a 10 KiB tar, a multi-megabyte PAX header, a million-extent sparse map, more entries
than allowed) and checks the answer names what was refused, and that nothing is left in the store.
"""

import io
import os
import re
import shutil
import subprocess
import tarfile
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.diskusage.walk import WalkingDiskUsage
from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.limits import UnpackLimits
from adapters.storage.overlay_layer_store import OverlayLayerStore
from domain.errors import InvalidArgument, ResourceExhausted
from tests.contract.test_layer_store import chunks
from tests.layer_tars import Entry, Layer, digest, directory, file, hardlink, layer, symlink, tar_bytes
from tests.storage_fixtures import unmount_all_under

DEPTH = 2000  # "a/" 2000 times: 4000 bytes, just below PATH_MAX, and twice Python's recursion limit


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    unmount_all_under(tmp_path)
    _remove_deep(tmp_path)


def _remove_deep(path: Path) -> None:
    """pytest's own clean-up recurses: leave nothing deep behind for it (rm -rf does not recurse)."""
    subprocess.run(["rm", "-rf", "--one-file-system", str(path)], check=False)


def make_store(root: Path, limits: UnpackLimits | None = None) -> OverlayLayerStore:
    return OverlayLayerStore(root / "storage", AtomicFileStateStore(root / "state"), limits=limits)


def plain(tar: bytes) -> Layer:
    return Layer(tar, digest(tar), "application/vnd.oci.image.layer.v1.tar")


def left_in_store(root: Path) -> list[str]:
    """What a refused or removed layer left behind: the store's temp, layer and link dirs must be empty."""
    storage = root / "storage"
    return [f"{sub}/{name}" for sub in ("tmp", "layers", "l") for name in os.listdir(storage / sub)]


def refused(store: OverlayLayerStore, item: Layer, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        store.unpack("", item.diff_id, chunks(item.blob, 1 << 16), "image:a")
    assert store.list_layers() == []


# -- depth and length --------------------------------------------------------------------------------------


def deep_layer() -> Layer:
    path = "/".join(["a"] * DEPTH)
    entries = [directory("/".join(["a"] * depth)) for depth in range(1, DEPTH + 1)]
    return layer([*entries, file(f"{path}/f", b"deep")])


def test_a_tree_deeper_than_python_recursion_unpacks_is_measured_and_is_removed(root: Path) -> None:
    store = make_store(root)
    item = deep_layer()
    unpacked = store.unpack("", item.diff_id, chunks(item.blob), "image:a")
    assert unpacked.inodes == DEPTH + 2  # the layer root, every directory, the file
    merged = store.create_rootfs("c1", [unpacked.chain_id], "img")
    deep_dir = os.open(merged, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(DEPTH):
        next_dir = os.open("a", os.O_RDONLY | os.O_DIRECTORY, dir_fd=deep_dir)
        os.close(deep_dir)
        deep_dir = next_dir
    try:
        assert os.read(os.open("f", os.O_RDONLY, dir_fd=deep_dir), 10) == b"deep"
        # What a container does: nest deeper still in its writable layer, past PATH_MAX.
        for _ in range(DEPTH):
            os.mkdir("b", dir_fd=deep_dir)
            next_dir = os.open("b", os.O_RDONLY | os.O_DIRECTORY, dir_fd=deep_dir)
            os.close(deep_dir)
            deep_dir = next_dir
    finally:
        os.close(deep_dir)
    upper = store.writable_layer("c1")
    assert upper is not None
    assert WalkingDiskUsage().usage(str(upper)).inodes_used > 2 * DEPTH  # stats of the writable layer
    assert store.usage().container_layers.inodes_used > 2 * DEPTH
    store.remove_rootfs("c1")
    assert os.listdir(root / "storage" / "containers") == []
    store.release(unpacked.chain_id, "image:a")
    assert left_in_store(root) == []


def test_a_deep_tree_replaced_by_a_file_is_removed_within_the_unpack(root: Path) -> None:
    store = make_store(root)
    entries = [directory("/".join(["a"] * depth)) for depth in range(1, DEPTH + 1)]
    item = layer([*entries, file("a", b"now a file")])
    unpacked = store.unpack("", item.diff_id, chunks(item.blob), "image:a")
    merged = store.create_rootfs("c1", [unpacked.chain_id], "img")
    assert (merged / "a").read_bytes() == b"now a file"
    store.remove_rootfs("c1")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/".join(["a"] * 2048) + "/f", "PATH_MAX"),
        ("d/" + "x" * 256, "NAME_MAX"),
    ],
    ids=["path past PATH_MAX", "name past NAME_MAX"],
)
def test_names_the_kernel_would_refuse_are_refused_by_name(root: Path, name: str, why: str) -> None:
    store = make_store(root)
    refused(store, layer([directory("d"), file(name, b"x")]), InvalidArgument, f"longer than {why}")
    assert left_in_store(root) == []


def test_a_failed_unpack_of_a_deep_tree_leaves_nothing(root: Path) -> None:
    store = make_store(root)
    entries = [directory("/".join(["a"] * depth)) for depth in range(1, DEPTH + 1)]
    item = layer([*entries, file("/etc/escape", b"x")])
    refused(store, item, InvalidArgument, "absolute path")
    assert left_in_store(root) == []


# -- headers tarfile reads into memory ---------------------------------------------------------------------


def pax_header_layer(size: int) -> Layer:
    info = tarfile.TarInfo("f")
    info.pax_headers = {"comment": "x" * size}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info)
    return plain(out.getvalue())


def gnu_long_name_layer(size: int) -> Layer:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as archive:
        archive.addfile(tarfile.TarInfo("d/" * (size // 2)))
    return plain(out.getvalue())


def test_a_pax_header_over_a_mebibyte_is_refused_before_it_is_read(root: Path) -> None:
    store = make_store(root)
    refused(store, pax_header_layer(2 << 20), InvalidArgument, "extended tar header")
    small = pax_header_layer(64 << 10)  # large but within bounds: unpacked
    store.unpack("", small.diff_id, chunks(small.blob), "image:a")


def test_a_gnu_long_name_over_a_mebibyte_is_refused_before_it_is_read(root: Path) -> None:
    refused(make_store(root), gnu_long_name_layer(2 << 20), InvalidArgument, "extended tar header")


# -- sparse files ---------------------------------------------------------------------------------------


def gnu_tar_sparse(scratch: Path, size: int, tail: bytes, fmt: str) -> Layer:
    """A tar made by GNU tar of a file of `size` bytes that is all hole but for `tail` at its end."""
    scratch.mkdir()
    with open(scratch / "big", "wb") as out:
        out.truncate(size - len(tail))
        out.seek(size - len(tail))
        out.write(tail)
    tar = subprocess.run(
        ["tar", "--sparse", "-H", fmt, "-cf", "-", "-C", str(scratch), "big"], check=True, capture_output=True
    ).stdout
    shutil.rmtree(scratch)
    return plain(tar)


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_a_sparse_file_counts_at_its_full_size_against_the_layer_limits(root: Path, fmt: str) -> None:
    bomb = gnu_tar_sparse(root / "scratch", 20 << 30, b"end", fmt)
    assert len(bomb.blob) < 64 << 10
    store = make_store(root)
    refused(store, bomb, ResourceExhausted, r"image\.max_layer_bytes")
    assert left_in_store(root) == []


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_a_sparse_file_past_the_expansion_ratio_is_refused(root: Path, fmt: str) -> None:
    bomb = gnu_tar_sparse(root / "scratch", 200 << 20, b"end", fmt)
    refused(make_store(root), bomb, ResourceExhausted, r"image\.max_layer_ratio")
    assert left_in_store(root) == []


@pytest.mark.parametrize("fmt", ["gnu", "pax"])
def test_a_small_sparse_file_unpacks_with_its_holes_as_zeros(root: Path, fmt: str) -> None:
    item = gnu_tar_sparse(root / "scratch", 1 << 20, b"end", fmt)
    store = make_store(root)
    chain = store.unpack("", item.diff_id, chunks(item.blob), "image:a").chain_id
    data = (root / "storage" / "layers" / chain.removeprefix("sha256:") / "big").read_bytes()
    assert len(data) == 1 << 20 and data.endswith(b"end") and not data[:-3].strip(b"\0")


def _checksummed(header: bytearray) -> bytes:
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def old_gnu_sparse_map_layer(extension_blocks: int) -> Layer:
    """An old-GNU sparse entry ('S') whose map goes on for `extension_blocks` blocks of 21 extents."""
    info = tarfile.TarInfo("sparse")
    info.size = 0
    header = bytearray(info.tobuf(format=tarfile.GNU_FORMAT))
    header[156:157] = b"S"
    header[482] = 1  # isextended
    header[483:495] = b"%011o\0" % (1 << 30)  # realsize
    blocks = [_checksummed(header)]
    for index in range(extension_blocks):
        block = bytearray(512)
        for slot in range(21):
            at = slot * 24
            block[at : at + 24] = b"%011o\0%011o\0" % (index * 64 + slot * 2 + 1, 1)
        block[504] = 1 if index < extension_blocks - 1 else 0
        blocks.append(bytes(block))
    return plain(b"".join(blocks) + b"\0" * 1024)


def pax_sparse_map_layer(map_text: bytes) -> Layer:
    """A GNU PAX 1.0 sparse entry whose map (at the start of its data) is `map_text`."""
    info = tarfile.TarInfo("GNUSparseFile.0/f")
    info.size = len(map_text)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": "f",
        "GNU.sparse.realsize": "10",
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info, io.BytesIO(map_text))
    return plain(out.getvalue())


def test_a_sparse_map_without_end_is_refused_before_it_fills_memory(root: Path) -> None:
    refused(
        make_store(root), old_gnu_sparse_map_layer(3200), InvalidArgument, "sparse map of more than 65536"
    )


@pytest.mark.parametrize(
    ("map_text", "match"),
    [(b"99999999\n", "sparse map of 99999999 extents"), (b"1\nzero\n0\n", "malformed sparse map")],
    ids=["huge count", "not a number"],
)
def test_a_pax_sparse_map_is_bounded_and_parsed_strictly(root: Path, map_text: bytes, match: str) -> None:
    refused(make_store(root), pax_sparse_map_layer(map_text), InvalidArgument, match)


# -- counts and inodes -------------------------------------------------------------------------------------


def test_more_entries_than_allowed_are_refused_with_the_config_key(root: Path) -> None:
    store = make_store(root, UnpackLimits(max_entries=1000))
    many = layer([file(f"f{index}") for index in range(1001)])
    refused(store, many, ResourceExhausted, r"more than 1000 entries \(config key image\.max_layer_entries\)")
    assert left_in_store(root) == []
    fits = layer([file(f"f{index}") for index in range(1000)])
    store.unpack("", fits.diff_id, chunks(fits.blob), "image:a")


def test_an_unpack_keeps_the_configured_free_inodes(root: Path) -> None:
    disk = root / "few-inodes"
    disk.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256m,nr_inodes=40000", "tmpfs", str(disk)], check=True
    )
    try:
        store = OverlayLayerStore(
            disk / "storage",
            AtomicFileStateStore(root / "state"),
            limits=UnpackLimits(min_free_bytes=0, min_free_inodes=10_000),
        )
        # 45000 empty files: their tar headers pass 16 MiB, where the free-space check runs again, after
        # about 33000 files: below the floor, and before the file system runs out (ENOSPC).
        many = layer([file(f"f{index}") for index in range(45_000)])
        floor = r"inodes free, less than the 10000 it keeps \(config key image\.min_free_inodes\)"
        refused(store, many, ResourceExhausted, floor)
        assert os.listdir(disk / "storage" / "tmp") == []
        assert os.statvfs(disk).f_favail > 39_000  # everything it made is gone again
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# -- where the archive ends -------------------------------------------------------------------------------


def test_an_archive_cut_inside_a_header_is_refused_not_taken_as_its_end(root: Path) -> None:
    whole = tar_bytes([directory("d"), file("d/f", b"x" * 5000)])
    refused(make_store(root), plain(whole[:700]), InvalidArgument, "cut short")
    assert left_in_store(root) == []


def test_a_corrupt_header_after_the_first_is_refused_not_taken_as_the_end(root: Path) -> None:
    whole = bytearray(tar_bytes([file("a", b"1"), file("b", b"2")]))
    whole[1024 + 100] ^= 0xFF  # the second header's mode: its checksum no longer matches
    refused(make_store(root), plain(bytes(whole)), InvalidArgument, "corrupt tar header")
    assert left_in_store(root) == []


def test_data_after_the_end_of_archive_counts_towards_the_diff_id(root: Path) -> None:
    store = make_store(root)
    whole = tar_bytes([file("a", b"1")])
    padded = whole + b"trailing" * 100
    with pytest.raises(InvalidArgument, match="hashes to"):
        store.unpack("", digest(whole), chunks(padded), "image:a")
    assert store.unpack("", digest(padded), chunks(padded), "image:a").inodes == 2


# -- whiteouts --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "why"),
    [
        ([symlink("s", "/etc"), file("s/.wh.passwd")], "path goes through the symlink 's'"),
        ([symlink("s", "/etc"), file("s/.wh..wh..opq")], "path goes through the symlink 's'"),
        ([directory("d"), file("d/.wh...")], "whiteout of nothing"),
        ([file(".wh./")], "whiteout of nothing"),
    ],
    ids=["whiteout through symlink", "opaque through symlink", "whiteout of dot-dot", "whiteout of slash"],
)
def test_whiteouts_that_reach_outside_or_name_nothing_are_refused(
    root: Path, entries: list[Entry], why: str
) -> None:
    refused(make_store(root), layer(entries), InvalidArgument, why)
    assert left_in_store(root) == []


def test_a_file_becomes_a_directory_and_a_file_again_across_layers(root: Path) -> None:
    store = make_store(root)
    parent, stack = "", []
    for entries in (
        [file("x", b"first file")],
        [directory("x"), file("x/y", b"inside")],
        [file("x", b"file again")],
    ):
        item = layer(entries)
        parent = store.unpack(parent, item.diff_id, chunks(item.blob), "image:a").chain_id
        stack.append(parent)
    merged = store.create_rootfs("c1", stack[:2], "img")
    assert (merged / "x" / "y").read_bytes() == b"inside"
    store.remove_rootfs("c1")
    merged = store.create_rootfs("c2", stack, "img")
    assert (merged / "x").read_bytes() == b"file again"
    store.remove_rootfs("c2")


@pytest.fixture
def ext4_store(root: Path) -> Iterator[tuple[OverlayLayerStore, Path]]:
    """A store on a small ext4 file system of its own (loop-mounted): its limits per file are ext4's."""
    disk = root / "ext4"
    disk.mkdir()
    image = root / "ext4.img"
    subprocess.run(["truncate", "-s", "64M", str(image)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-N", "80000", str(image)], check=True)
    device = subprocess.run(
        ["losetup", "--find", "--show", str(image)], check=True, capture_output=True, text=True
    ).stdout.strip()
    try:
        # A loop device keeps a read-only flag set while an earlier user had it bound: clear it on ours.
        subprocess.run(["blockdev", "--setrw", device], check=True)
        subprocess.run(["mount", device, str(disk)], check=True)
        try:
            limits = UnpackLimits(min_free_bytes=0, min_free_inodes=0)
            store = OverlayLayerStore(disk / "storage", AtomicFileStateStore(root / "state"), limits=limits)
            yield store, disk
        finally:
            subprocess.run(["umount", "-l", str(disk)], check=False)
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


def test_more_hard_links_to_one_file_than_the_file_system_allows_is_invalid_argument(
    ext4_store: tuple[OverlayLayerStore, Path],
) -> None:
    store, disk = ext4_store
    links = layer([file("f", b"x")] + [hardlink(f"h{index}", "f") for index in range(65_001)])  # ext4: 65000
    refused(store, links, InvalidArgument, "links one file more often than the image store's file system")
    assert os.listdir(disk / "storage" / "tmp") == []


@pytest.mark.parametrize(
    ("xattrs", "why"),
    [
        ({"user.big": "v" * 70_000}, "xattr 'user.big' of 70000 bytes: Argument list too long"),
        ({"user." + "n" * 300: "v"}, "Numerical result out of range"),
        ({f"user.k{index}": "v" * 100 for index in range(200)}, "No space left on device (more than the"),
    ],
    ids=["value past 64 KiB", "name past 255 bytes", "more than one file holds"],
)
def test_xattrs_the_file_system_cannot_hold_are_invalid_argument(
    ext4_store: tuple[OverlayLayerStore, Path], xattrs: dict[str, str], why: str
) -> None:
    store, disk = ext4_store
    refused(store, layer([file("f", b"x", xattrs=xattrs)]), InvalidArgument, re.escape(why))
    assert os.listdir(disk / "storage" / "tmp") == []


def test_many_deep_directories_do_not_keep_their_paths_in_memory(root: Path) -> None:
    # Directory mtimes are set after the unpack; keeping each directory's path for it took 16 KiB a
    # directory at this depth (a million of them: 16 GiB). Kept by inode now: a few dozen bytes each.
    deep = "/".join(["a"] * DEPTH)
    entries = [directory("/".join(["a"] * depth)) for depth in range(1, DEPTH + 1)]
    entries += [directory(f"{deep}/{index}", mtime=1_400_000_000) for index in range(5000)]
    item = layer(entries)
    store = make_store(root)
    tracemalloc.start()
    try:
        chain = store.unpack("", item.diff_id, chunks(item.blob, 1 << 20), "image:a").chain_id
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak} bytes at the peak of the unpack"
    layer_dir = os.open(root / "storage" / "layers" / chain.removeprefix("sha256:"), os.O_RDONLY)
    try:
        assert os.stat(f"{deep}/4999", dir_fd=layer_dir).st_mtime == 1_400_000_000
    finally:
        os.close(layer_dir)


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"uid": str(1 << 40)}, "uid 1099511627776 is out of range"),
        ({"uid": "-5"}, "uid -5 is out of range"),
        ({"gid": str((1 << 32) - 1)}, "gid 4294967295 is out of range"),
    ],
    ids=["uid past 32 bits", "negative uid", "gid of chown's leave-unchanged"],
)
def test_owner_ids_no_file_can_have_are_refused_by_name(
    root: Path, headers: dict[str, str], why: str
) -> None:
    info = tarfile.TarInfo("f")
    info.pax_headers = headers
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        archive.addfile(info)
    refused(make_store(root), plain(out.getvalue()), InvalidArgument, why)
    assert left_in_store(root) == []

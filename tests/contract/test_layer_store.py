"""The LayerStore contract, run against the in-memory fake and, as root, the overlay store."""

import gzip
import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.overlay_layer_store import OverlayLayerStore
from domain.errors import AlreadyExists, Internal, InvalidArgument, NotFound
from ports.layer_store import Layer as StoredLayer
from ports.layer_store import LayerStore
from tests.fakes.layer_store import InMemoryLayerStore
from tests.layer_tars import Layer, digest, directory, file, hardlink, layer, symlink, tar_bytes
from tests.storage_fixtures import unmount_all_under

BASE = layer([directory("etc"), file("etc/hostname", b"base\n"), file("bin/sh", b"#!", mode=0o755)])
TOP = layer([file("etc/hostname", b"top\n"), file("etc/.wh.motd")])


@pytest.fixture(params=["fake", "overlay"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LayerStore]:
    if request.param == "fake":
        yield InMemoryLayerStore()
        return
    real = OverlayLayerStore(tmp_path / "storage", AtomicFileStateStore(tmp_path / "state"))
    try:
        yield real
    finally:
        unmount_all_under(tmp_path)


def chunks(data: bytes, size: int = 1000) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def unpack(store: LayerStore, item: Layer, parent: str = "", holder: str = "image:a") -> str:
    return store.unpack(parent, item.diff_id, chunks(item.blob), holder).chain_id


def test_a_base_layers_chain_id_is_its_diff_id(store: LayerStore) -> None:
    found = store.unpack("", BASE.diff_id, chunks(BASE.blob), "image:a")
    assert found.chain_id == BASE.diff_id
    assert found.diff_id == BASE.diff_id
    assert found.parent == ""
    assert found.holders == {"image:a"}
    assert found.size > 0 and found.inodes > 0
    assert store.get(BASE.diff_id) == found


def test_chain_id_of_an_upper_layer_follows_the_image_spec(store: LayerStore) -> None:
    base = unpack(store, BASE)
    top = store.unpack(base, TOP.diff_id, chunks(TOP.blob), "image:a")
    expected = "sha256:" + hashlib.sha256(f"{base} {TOP.diff_id}".encode()).hexdigest()
    assert top.chain_id == expected
    assert top.parent == base
    assert [x.chain_id for x in store.list_layers()] == sorted([base, expected])


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_every_compression_unpacks(store: LayerStore, compression: str) -> None:
    item = layer([file("a", b"x" * 100_000)], compression)
    assert store.get(unpack(store, item)) is not None


def test_an_existing_layer_is_not_read_again(store: LayerStore) -> None:
    unpack(store, BASE)

    def never() -> Iterator[bytes]:
        raise AssertionError("the blob was read")
        yield b""

    again = store.unpack("", BASE.diff_id, never(), "image:b")
    assert again.holders == {"image:a", "image:b"}


def test_concurrent_unpacks_of_one_layer_agree(store: LayerStore) -> None:
    big = layer([file(f"f{i}", bytes([i]) * 20_000) for i in range(50)])
    results: list[StoredLayer] = []
    errors: list[BaseException] = []

    def unpack_as(holder: str) -> None:
        try:
            results.append(store.unpack("", big.diff_id, chunks(big.blob), holder))
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=unpack_as, args=(f"image:{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert {r.chain_id for r in results} == {big.diff_id}
    found = store.get(big.diff_id)
    assert found is not None and found.holders == {f"image:{i}" for i in range(4)}
    assert len(store.list_layers()) == 1


def test_a_diff_id_mismatch_keeps_nothing(store: LayerStore) -> None:
    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidArgument, match="hashes to"):
        store.unpack("", wrong, chunks(BASE.blob), "image:a")
    assert store.get(wrong) is None
    assert store.list_layers() == []


def test_a_failing_blob_stream_keeps_nothing(store: LayerStore) -> None:
    def broken() -> Iterator[bytes]:
        yield BASE.blob[:500]
        raise Internal("blob digest mismatch")

    with pytest.raises(Internal, match="mismatch"):
        store.unpack("", BASE.diff_id, broken(), "image:a")
    assert store.list_layers() == []


def test_garbage_is_not_a_layer(store: LayerStore) -> None:
    garbage = b"\x1f\x8b" + b"not gzip at all" * 10
    with pytest.raises(InvalidArgument):
        store.unpack("", "sha256:" + hashlib.sha256(garbage).hexdigest(), chunks(garbage), "image:a")
    assert store.list_layers() == []


@pytest.mark.parametrize("cut", [8, 200])
def test_a_truncated_gzip_stream_keeps_nothing(store: LayerStore, cut: int) -> None:
    tar = tar_bytes([file("a", b"x" * 5000)])
    blob = gzip.compress(tar)[:-cut]
    with pytest.raises(InvalidArgument):
        store.unpack("", digest(tar), chunks(blob), "image:a")
    assert store.list_layers() == []


def test_an_upper_layer_may_be_unpacked_before_its_parent(store: LayerStore) -> None:
    """A pull commits its layers in whatever order they complete; the stack is whole once all are in."""
    base_chain = BASE.diff_id
    top = store.unpack(base_chain, TOP.diff_id, chunks(TOP.blob), "image:a")
    assert top.parent == base_chain and store.get(base_chain) is None
    with pytest.raises(NotFound):
        store.create_rootfs("ctr-early", [base_chain, top.chain_id], "a")
    assert unpack(store, BASE) == base_chain
    path = store.create_rootfs("ctr-late", [base_chain, top.chain_id], "a")
    if isinstance(store, OverlayLayerStore):
        assert (path / "etc" / "hostname").read_bytes() == b"top\n"
        assert (path / "bin" / "sh").exists()
    store.remove_rootfs("ctr-late")


# Where a broken unpacker would write on the host: checked absent (and removed if a regression made them).
ESCAPES = [Path("/pycrio-hostile-evil"), Path("/tmp/pycrio-hostile/evil"), Path("/etc/pycrio-hostile-evil")]

HOSTILE = {
    "absolute path": [file("/etc/pycrio-hostile-evil", b"x")],
    "dot-dot": [directory("a"), file("a/../../pycrio-hostile-evil", b"x")],
    "symlink escape": [symlink("escape", "/"), file("escape/pycrio-hostile-evil", b"x")],
    "relative symlink escape": [symlink("up", "../../.."), file("up/pycrio-hostile-evil", b"x")],
    "symlinked parent dir": [
        directory("d"),
        symlink("d/link", "/tmp"),
        file("d/link/pycrio-hostile/evil", b"x"),
    ],
    "hard link to absolute path": [hardlink("h", "/etc/passwd")],
    "hard link out": [hardlink("h", "../../../../etc/passwd")],
    "hard link through symlink": [symlink("s", "/etc"), hardlink("h", "s/passwd")],
    "hard link to nothing": [hardlink("h", "missing")],
}


def escaped() -> list[Path]:
    """Escape targets that exist on the host (removed at once so one failure does not leak)."""
    found = [path for path in ESCAPES if path.exists()]
    for path in found:
        path.unlink()
        if path.parent.name == "pycrio-hostile":
            path.parent.rmdir()
    return found


@pytest.mark.parametrize("entries", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_layer_is_refused_and_kept_nowhere(store: LayerStore, entries: list[object]) -> None:
    item = layer(entries)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="layer"):
        unpack(store, item)
    assert store.get(item.diff_id) is None
    assert store.list_layers() == []
    assert escaped() == []


def test_a_shared_layer_survives_until_its_last_holder_lets_go(store: LayerStore) -> None:
    base = unpack(store, BASE, holder="image:a")
    assert store.hold(base, "image:b")
    store.release(base, "image:a")
    assert store.get(base) is not None
    store.release(base, "image:a")  # twice is harmless
    assert store.get(base) is not None
    store.release(base, "image:b")
    assert store.get(base) is None
    assert not store.hold(base, "image:c")
    store.release(base, "image:b")  # absent is harmless


def test_usage_counts_layers(store: LayerStore) -> None:
    assert store.usage().image_layers.used_bytes == 0
    base = unpack(store, BASE)
    usage = store.usage()
    assert usage.image_layers.used_bytes > 0
    assert usage.image_layers.inodes_used > 0
    assert usage.image_layers.mountpoint != usage.container_layers.mountpoint
    store.release(base, "image:a")
    assert store.usage().image_layers.used_bytes == 0


def test_rootfs_holds_layers_and_is_idempotent(store: LayerStore) -> None:
    base = unpack(store, BASE)
    top = unpack(store, TOP, base)
    path = store.create_rootfs("c1", [base, top], "img")
    assert store.create_rootfs("c1", [base, top], "img") == path
    found = store.rootfs("c1")
    assert found is not None and found.mounted and found.layers == (base, top) and found.image_id == "img"
    assert [r.container_id for r in store.list_rootfs()] == ["c1"]
    layer_top = store.get(top)
    assert layer_top is not None and "container:c1" in layer_top.holders
    store.release(top, "image:a")
    store.release(base, "image:a")
    assert store.get(top) is not None, "the container keeps its layers"
    store.remove_rootfs("c1")
    assert store.rootfs("c1") is None
    assert store.get(top) is None and store.get(base) is None
    store.remove_rootfs("c1")


def test_rootfs_needs_its_layers(store: LayerStore) -> None:
    with pytest.raises(NotFound):
        store.create_rootfs("c1", ["sha256:" + "2" * 64], "img")
    assert store.rootfs("c1") is None


def test_rootfs_over_other_layers_is_already_taken(store: LayerStore) -> None:
    base = unpack(store, BASE)
    top = unpack(store, TOP, base)
    store.create_rootfs("c1", [base, top], "img")
    with pytest.raises(AlreadyExists):
        store.create_rootfs("c1", [base], "img")
    store.remove_rootfs("c1")


def test_unmount_keeps_the_rootfs(store: LayerStore) -> None:
    base = unpack(store, BASE)
    path = store.create_rootfs("c1", [base], "img")
    store.unmount_rootfs("c1")
    found = store.rootfs("c1")
    assert found is not None and not found.mounted
    store.unmount_rootfs("c1")
    assert store.create_rootfs("c1", [base], "img") == path
    found = store.rootfs("c1")
    assert found is not None and found.mounted
    store.remove_rootfs("c1")


def test_the_writable_layer_is_known_from_create_to_remove(store: LayerStore) -> None:
    base = unpack(store, BASE)
    assert store.writable_layer("c1") is None
    path = store.create_rootfs("c1", [base], "img")
    layer_dir = store.writable_layer("c1")
    assert layer_dir is not None and layer_dir != path
    if path.is_dir():  # a real store: what the container writes lands in its writable layer
        (path / "written").write_bytes(b"by the container")
        assert (layer_dir / "written").read_bytes() == b"by the container"
    store.unmount_rootfs("c1")
    assert store.writable_layer("c1") == layer_dir
    store.remove_rootfs("c1")
    assert store.writable_layer("c1") is None

"""The StateStore contract, run against the in-memory fake and the atomic file adapter."""

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from adapters.state.file_store import AtomicFileStateStore
from domain.errors import InvalidArgument, ResourceExhausted
from ports.state_store import StateStore
from tests.fakes.state_store import InMemoryStateStore


@pytest.fixture(params=["fake", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StateStore]:
    if request.param == "fake":
        yield InMemoryStateStore()
    else:
        yield AtomicFileStateStore(tmp_path / "state")


def test_put_then_get_returns_an_equal_copy(store: StateStore) -> None:
    doc = {"id": "abc", "labels": {"a": "b"}, "n": 3}
    store.put("sandboxes", "abc", doc)
    got = store.get("sandboxes", "abc")
    assert got == doc
    assert got is not doc
    assert got is not None
    got["labels"]["a"] = "changed"
    assert store.get("sandboxes", "abc") == doc


def test_absent_document_is_none(store: StateStore) -> None:
    assert store.get("containers", "nope") is None


def test_put_replaces(store: StateStore) -> None:
    store.put("containers", "c1", {"state": "created"})
    store.put("containers", "c1", {"state": "running"})
    assert store.get("containers", "c1") == {"state": "running"}


def test_delete_is_idempotent(store: StateStore) -> None:
    store.put("containers", "c1", {"state": "created"})
    store.delete("containers", "c1")
    store.delete("containers", "c1")
    assert store.get("containers", "c1") is None


def test_list_is_per_kind(store: StateStore) -> None:
    store.put("sandboxes", "s1", {"k": 1})
    store.put("sandboxes", "s2", {"k": 2})
    store.put("containers", "c1", {"k": 3})
    assert store.list("sandboxes") == {"s1": {"k": 1}, "s2": {"k": 2}}
    assert store.list("images") == {}


@pytest.mark.parametrize("bad", ["../escape", "a/b", ".hidden", "", "x" * 300])
def test_unsafe_names_are_refused(store: StateStore, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        store.put("sandboxes", bad, {})
    with pytest.raises(InvalidArgument):
        store.get(bad, "ok")


def test_unserialisable_document_is_refused_and_keeps_the_old_one(store: StateStore) -> None:
    store.put("sandboxes", "s1", {"v": 1})
    with pytest.raises(TypeError):
        store.put("sandboxes", "s1", {"v": object()})
    assert store.get("sandboxes", "s1") == {"v": 1}


# --- the file adapter on a real, small file system ------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs with 64 inodes: filled by a test to see what a full state dir does."""
    disk = tmp_path / "disk"
    disk.mkdir()
    options = "size=1m,nr_inodes=64"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "pctest-state", str(disk)], check=True)
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of `disk`; returns the file to remove to give them back."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 4096)
    return filler


def _leftovers(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir() if path.name.startswith(".tmp-"))


def test_a_full_disk_refuses_the_write_naming_the_record_and_keeps_the_old_version(small_disk: Path) -> None:
    store = AtomicFileStateStore(small_disk / "state")
    store.put("pods", "p1", {"v": 1})
    filler = _fill(small_disk)
    with pytest.raises(ResourceExhausted, match=r"no space left to record pods p1 in .*/state/pods"):
        store.put("pods", "p1", {"v": 2, "pad": "x" * 8192})
    assert store.get("pods", "p1") == {"v": 1}  # never half-written
    assert _leftovers(small_disk / "state" / "pods") == []  # the temp file that could not be written is gone
    filler.unlink()
    store.put("pods", "p1", {"v": 3})  # space is back: the store goes on
    assert store.get("pods", "p1") == {"v": 3}


def test_no_inode_left_for_the_temp_file_is_resource_exhausted_too(small_disk: Path) -> None:
    store = AtomicFileStateStore(small_disk / "state")
    store.put("pods", "p1", {"v": 1})
    fillers = small_disk / "inodes"
    fillers.mkdir()
    with contextlib.suppress(OSError):
        for number in range(1000):
            (fillers / str(number)).touch()
    with pytest.raises(ResourceExhausted, match="pods p2"):
        store.put("pods", "p2", {"v": 1})
    assert store.list("pods") == {"p1": {"v": 1}}
    shutil.rmtree(fillers)
    store.put("pods", "p2", {"v": 1})
    assert set(store.list("pods")) == {"p1", "p2"}


@pytest.mark.parametrize("content", [b'{"id": "p2", "sta', b"\x00\xff garbage", b"[1, 2]", b""])
def test_an_unreadable_record_is_moved_aside_and_the_rest_are_listed(tmp_path: Path, content: bytes) -> None:
    store = AtomicFileStateStore(tmp_path / "state")
    store.put("pods", "p1", {"v": 1})
    store.put("pods", "p2", {"v": 2})
    (tmp_path / "state" / "pods" / "p2.json").write_bytes(content)  # torn by a disk error or a hand edit
    with structlog.testing.capture_logs() as logs:
        assert store.list("pods") == {"p1": {"v": 1}}
    (line,) = [entry for entry in logs if entry["log_level"] == "error"]
    assert line["event"] == "unreadable state record moved aside"
    assert line["path"].endswith("/pods/p2.json")
    aside = tmp_path / "state" / "pods" / "p2.json.corrupt"
    assert aside.read_bytes() == content  # kept for whoever investigates
    assert store.list("pods") == {"p1": {"v": 1}}  # and the next start does not trip on it again
    store.put("pods", "p2", {"v": 3})  # the id can be used afresh
    assert store.get("pods", "p2") == {"v": 3}

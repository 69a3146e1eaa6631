"""The ImageStore contract, run against the in-memory fake and the StateStore-backed store (on files)."""

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.state.file_store import AtomicFileStateStore
from adapters.storage.image_store import StateImageStore
from ports.image_store import ImageConfig, ImageRecord, ImageStore
from tests.fakes.image_store import InMemoryImageStore

A = "a" * 64
AB = "ab" + "c" * 62
B = "b" * 64


def record(image_id: str, tags: tuple[str, ...] = (), digests: tuple[str, ...] = ()) -> ImageRecord:
    return ImageRecord(
        id=image_id,
        repo_tags=tags,
        repo_digests=digests,
        layers=("sha256:" + "1" * 64,),
        size=123,
        config=ImageConfig(
            user="1000:1000",
            env=("PATH=/bin",),
            entrypoint=("/bin/sh",),
            cmd=("-c", "true"),
            working_dir="/w",
            volumes=("/data",),
            stop_signal="SIGINT",
            labels={"k": "v"},
        ),
        oci_config={"config": {"User": "1000:1000"}, "rootfs": {"type": "layers"}},
        pulled_at=42,
    )


@pytest.fixture(params=["fake", "state"])
def reopen(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], ImageStore]]:
    """A factory giving the store as a restarted daemon would see it (the same store for the fake)."""
    if request.param == "fake":
        fake = InMemoryImageStore()
        yield lambda: fake
    else:
        yield lambda: StateImageStore(AtomicFileStateStore(tmp_path / "state"))


def test_records_round_trip_and_survive_a_restart(reopen: Callable[[], ImageStore]) -> None:
    image = record(
        A, ("docker.io/library/busybox:latest",), ("docker.io/library/busybox@sha256:" + "9" * 64,)
    )
    reopen().put(image)
    assert reopen().get(A) == image
    assert reopen().list_images() == [image]


def test_lookups(reopen: Callable[[], ImageStore]) -> None:
    store = reopen()
    store.put(record(A, ("r/x:1",), ("r/x@sha256:" + "1" * 64,)))
    store.put(record(AB, ("r/y:1",)))
    store.put(record(B))
    assert [i.id for i in store.by_id_prefix("a")] == [A, AB]
    assert [i.id for i in store.by_id_prefix("ab")] == [AB]
    assert store.by_id_prefix("c") == []
    tagged = store.by_tag("r/y:1")
    assert tagged is not None and tagged.id == AB
    assert store.by_tag("r/y:2") is None
    digested = store.by_digest("r/x@sha256:" + "1" * 64)
    assert digested is not None and digested.id == A
    assert store.get("nope") is None


def test_put_replaces_and_delete_is_idempotent(reopen: Callable[[], ImageStore]) -> None:
    store = reopen()
    store.put(record(A, ("r/x:1",)))
    store.put(record(A, ("r/x:2",)))
    assert store.by_tag("r/x:1") is None
    store.delete(A)
    store.delete(A)
    assert reopen().get(A) is None
    assert reopen().list_images() == []


def test_a_damaged_record_is_skipped_and_the_others_load(tmp_path: Path) -> None:
    state = AtomicFileStateStore(tmp_path / "state")
    StateImageStore(state).put(record(A, tags=("r.test/a:1",)))
    state.put("images", B, {"id": B, "repo_tags": ["r.test/b:1"]})  # fields missing
    store = StateImageStore(state)  # a daemon start: must not fail
    assert [image.id for image in store.list_images()] == [A]

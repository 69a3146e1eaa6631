"""The StateStore contract, run against the in-memory fake and the atomic file adapter."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.state.file_store import AtomicFileStateStore
from domain.errors import InvalidArgument
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

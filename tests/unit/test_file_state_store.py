"""Crash-safety details of the file adapter that the contract cannot see."""

import os
from pathlib import Path

import pytest

from adapters.state.file_store import AtomicFileStateStore
from domain.errors import Internal


def test_survives_a_new_instance(tmp_path: Path) -> None:
    AtomicFileStateStore(tmp_path).put("images", "i1", {"tags": ["a:b"]})
    assert AtomicFileStateStore(tmp_path).get("images", "i1") == {"tags": ["a:b"]}


def test_leftover_temp_files_are_ignored(tmp_path: Path) -> None:
    store = AtomicFileStateStore(tmp_path)
    store.put("images", "i1", {"x": 1})
    (tmp_path / "images" / ".tmp-123.json").write_text("{half")
    assert store.list("images") == {"i1": {"x": 1}}


def test_what_is_not_a_record_is_moved_aside_and_the_rest_is_listed(tmp_path: Path) -> None:
    """A directory, a symlink (to a good record, to /dev/zero), a FIFO in a record's place: the list moves
    each aside (`.corrupt`) and answers with the good records. Before, the directory raised
    IsADirectoryError out of the list (the daemon did not start), the FIFO's read blocked for ever and the
    link to /dev/zero read until memory ran out."""
    store = AtomicFileStateStore(tmp_path)
    store.put("containers", "good", {"id": "good"})
    records = tmp_path / "containers"
    (records / "dir.json").mkdir()
    (records / "link.json").symlink_to(records / "good.json")
    (records / "zero.json").symlink_to("/dev/zero")
    os.mkfifo(records / "fifo.json")
    assert store.list("containers") == {"good": {"id": "good"}}
    assert sorted(p.name for p in records.iterdir()) == [
        "dir.json.corrupt", "fifo.json.corrupt", "good.json", "link.json.corrupt", "zero.json.corrupt"
    ]  # fmt: skip
    assert AtomicFileStateStore(tmp_path).list("containers") == {"good": {"id": "good"}}


def test_get_refuses_what_is_not_a_record(tmp_path: Path) -> None:
    store = AtomicFileStateStore(tmp_path)
    store.put("pods", "good", {"id": "good"})
    (tmp_path / "pods" / "link.json").symlink_to(tmp_path / "pods" / "good.json")
    with pytest.raises(Internal, match="is not a record"):
        store.get("pods", "link")
    assert store.get("pods", "good") == {"id": "good"}
    assert store.get("pods", "absent") is None


def test_a_directory_put_in_a_records_place_while_running_is_set_aside_by_a_save_or_a_removal(
    tmp_path: Path,
) -> None:
    """Before, os.replace and unlink failed with IsADirectoryError: the container's stop answered INTERNAL
    and its removal failed for ever."""
    store = AtomicFileStateStore(tmp_path)
    for key in ("saved", "removed"):
        store.put("containers", key, {"id": key})
        (tmp_path / "containers" / f"{key}.json").unlink()
        (tmp_path / "containers" / f"{key}.json" / "inside").mkdir(parents=True)
    store.put("containers", "saved", {"id": "saved", "state": "EXITED"})
    store.delete("containers", "removed")
    assert store.list("containers") == {"saved": {"id": "saved", "state": "EXITED"}}
    assert (tmp_path / "containers" / "saved.json.corrupt" / "inside").is_dir()
    assert (tmp_path / "containers" / "removed.json.corrupt" / "inside").is_dir()

"""Crash-safety details of the file adapter that the contract cannot see."""

from pathlib import Path

from adapters.state.file_store import AtomicFileStateStore


def test_survives_a_new_instance(tmp_path: Path) -> None:
    AtomicFileStateStore(tmp_path).put("images", "i1", {"tags": ["a:b"]})
    assert AtomicFileStateStore(tmp_path).get("images", "i1") == {"tags": ["a:b"]}


def test_leftover_temp_files_are_ignored(tmp_path: Path) -> None:
    store = AtomicFileStateStore(tmp_path)
    store.put("images", "i1", {"x": 1})
    (tmp_path / "images" / ".tmp-123.json").write_text("{half")
    assert store.list("images") == {"i1": {"x": 1}}

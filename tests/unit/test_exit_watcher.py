"""The exit watcher on a real directory with inotify: every exit file reported once, as soon as written."""

import os
import queue
from pathlib import Path

from adapters.exits.watcher import ExitFileWatcher


def test_exit_files_are_reported_when_written_or_renamed_in(tmp_path: Path) -> None:
    exits: queue.Queue[str] = queue.Queue()
    watcher = ExitFileWatcher(tmp_path / "exits", exits.put)
    watcher.start()
    try:
        (tmp_path / "exits" / "abc123").write_text("0")  # conmon writes in place
        staged = tmp_path / "staged"
        staged.write_text("137")
        os.rename(staged, tmp_path / "exits" / "def456")
        (tmp_path / "exits" / ".tmp-ignored").write_text("")
        got = {exits.get(timeout=30), exits.get(timeout=30)}
        assert got == {"abc123", "def456"}
        (tmp_path / "exits" / "ghi789").write_text("1")
        assert exits.get(timeout=30) == "ghi789"
        assert exits.empty()
    finally:
        watcher.stop()


def test_a_failing_callback_does_not_end_the_watch(tmp_path: Path) -> None:
    seen: queue.Queue[str] = queue.Queue()

    def on_exit(container_id: str) -> None:
        seen.put(container_id)
        if container_id == "bad":
            raise RuntimeError("boom")

    watcher = ExitFileWatcher(tmp_path, on_exit)
    watcher.start()
    try:
        (tmp_path / "bad").write_text("1")
        assert seen.get(timeout=30) == "bad"
        (tmp_path / "good").write_text("0")
        assert seen.get(timeout=30) == "good"
    finally:
        watcher.stop()

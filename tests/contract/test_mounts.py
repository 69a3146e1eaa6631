"""unmount(): a plain mount goes, a busy one is detached lazily, an absent one is fine."""

import subprocess
from pathlib import Path

import pytest

from adapters.storage.mounts import is_mounted, unmount

pytestmark = pytest.mark.root


def _mount_tmpfs(target: Path) -> None:
    target.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], check=True)


def test_unmounts_and_tolerates_what_is_not_mounted(tmp_path: Path) -> None:
    target = tmp_path / "plain"
    _mount_tmpfs(target)
    assert is_mounted(target)
    unmount(target, timeout=10)
    assert not is_mounted(target)
    unmount(target, timeout=10)


def test_a_busy_mount_is_detached(tmp_path: Path) -> None:
    target = tmp_path / "busy"
    _mount_tmpfs(target)
    with (target / "held").open("w"):
        unmount(target, timeout=10)
        assert not is_mounted(target)

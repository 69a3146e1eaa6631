"""mount_overlay(): through mount(2) while the absolute paths fit in a page, through mount(8) with relative
ones past it. unmount(): a plain mount goes, a busy one is detached lazily, an absent one is fine."""

import subprocess
from pathlib import Path

import pytest

from adapters.storage.mounts import is_mounted, mount_overlay, unmount
from domain.errors import Internal

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


def _overlay_tree(root: Path, layers: int) -> list[str]:
    """`layers` lower dirs under root/l (top first), each holding a file named after it, and upper/work."""
    names = [f"l/{index:026d}" for index in range(layers)]
    for name in names:
        (root / name).mkdir(parents=True)
        (root / name / name[2:]).write_text(name)
    for sub in ("upper", "work", "merged"):
        (root / sub).mkdir()
    return names


@pytest.mark.parametrize("layers", [2, 120], ids=["absolute-mount(2)", "relative-mount(8)"])
def test_overlay_mounts_every_layer(tmp_path: Path, layers: int) -> None:
    root = tmp_path / "store"
    lower = _overlay_tree(root, layers)
    # 120 layers: the absolute paths pass a page, the relative ones do not.
    assert (len(":".join(f"{root}/{name}" for name in lower)) > 4096) is (layers == 120)
    mount_overlay(root, lower, "upper", "work", root / "merged", timeout=10)
    try:
        assert is_mounted(root / "merged")
        assert sorted(p.name for p in (root / "merged").iterdir()) == sorted(name[2:] for name in lower)
    finally:
        unmount(root / "merged", timeout=10)


def test_overlay_mount_failure_is_internal_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "store"
    _overlay_tree(root, 1)
    with pytest.raises(Internal, match="No such file"):
        mount_overlay(root, ["l/missing"], "upper", "work", root / "merged", timeout=10)
    assert not is_mounted(root / "merged")


def test_a_mount_point_with_spaces_and_backslashes_in_its_path_is_found(tmp_path: Path) -> None:
    target = tmp_path / "a dir\\with\tescapes"
    _mount_tmpfs(target)
    try:
        assert is_mounted(target)
        assert not is_mounted(tmp_path / "a dir")  # a prefix of a mount point is not one
    finally:
        unmount(target, timeout=10)
    assert not is_mounted(target)


def test_unmount_never_follows_a_symlink_and_tolerates_a_missing_path(tmp_path: Path) -> None:
    target = tmp_path / "real"
    _mount_tmpfs(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    try:
        unmount(link, timeout=10)
        assert is_mounted(target)  # the link is no mount point; what it points at is left alone
        unmount(tmp_path / "absent", timeout=10)
    finally:
        unmount(target, timeout=10)
    assert not is_mounted(target)

"""The DiskUsageReader contract: a real tree walked by the adapter, and the fake."""

import os
from pathlib import Path

import pytest

from adapters.diskusage.walk import WalkingDiskUsage
from domain.errors import NotFound
from ports.disk_usage import DiskUsage, DiskUsageReader
from tests.fakes.disk_usage import FakeDiskUsage


def make_tree(root: Path) -> None:
    """5 inodes (root, sub, a, b, c) plus a hard link and a symlink that must not count twice."""
    (root / "sub").mkdir(parents=True)
    for name in ("a", "sub/b", "sub/c"):
        (root / name).write_bytes(b"z" * 10_000)
    os.link(root / "a", root / "a-again")
    os.symlink("/etc", root / "elsewhere")


@pytest.fixture(params=["fake", "walk"])
def reader(request: pytest.FixtureRequest, tmp_path: Path) -> DiskUsageReader:
    make_tree(tmp_path / "upper")
    if request.param == "walk":
        return WalkingDiskUsage()
    fake = FakeDiskUsage()
    fake.trees[str(tmp_path / "upper")] = DiskUsage(used_bytes=3 * 12_288 + 2 * 4096, inodes_used=6)
    return fake


def test_counts_inodes_once_and_bytes_at_least_the_data(reader: DiskUsageReader, tmp_path: Path) -> None:
    usage = reader.usage(str(tmp_path / "upper"))
    assert usage.inodes_used == 6  # root, sub, a (once with its link), b, c, the symlink
    assert usage.used_bytes >= 30_000


def test_missing_tree_is_not_found(reader: DiskUsageReader, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        reader.usage(str(tmp_path / "absent"))


def test_growth_is_seen(tmp_path: Path) -> None:
    make_tree(tmp_path / "upper")
    walker = WalkingDiskUsage()
    before = walker.usage(str(tmp_path / "upper"))
    (tmp_path / "upper" / "big").write_bytes(b"y" * 1_000_000)
    after = walker.usage(str(tmp_path / "upper"))
    assert after.inodes_used == before.inodes_used + 1
    assert after.used_bytes >= before.used_bytes + 1_000_000


def test_capacity_of_the_filesystem(reader: DiskUsageReader, tmp_path: Path) -> None:
    capacity = reader.capacity(str(tmp_path / "upper"))
    assert capacity.total_bytes > 0
    assert 0 < capacity.inodes_free <= capacity.inodes_total
    with pytest.raises(NotFound):
        reader.capacity(str(tmp_path / "absent"))

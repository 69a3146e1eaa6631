"""The Cgroups port's set_limits, against the fake, the host's v1 hierarchies and a unified v2 tree: the
limits land in each tree's own files, and a refused write leaves every file as it was."""

import contextlib
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.cgroups.cgroupfs import CgroupFs, shares_to_weight
from domain.errors import Internal, InvalidArgument
from ports.cgroups import CgroupLimits, Cgroups
from tests.fakes.cgroups import FakeCgroups

PARENT = "pycrio-test-rpcs"
V1 = Path("/sys/fs/cgroup")
MIB = 1 << 20


@dataclass
class Tree:
    cgroups: Cgroups
    path: str
    # What the cgroup holds now, as (cpu shares, quota, period, memory limit, cpus), in v1 units.
    read: Callable[[], tuple[int, int, int, int, str]]
    # A cpuset.cpus value this tree refuses.
    refused_cpus: str
    unified: bool = False


def _v1_read(path: str) -> tuple[int, int, int, int, str]:
    def number(controller: str, name: str) -> int:
        return int((V1 / controller / path.lstrip("/") / name).read_text())

    return (
        number("cpu", "cpu.shares"),
        number("cpu", "cpu.cfs_quota_us"),
        number("cpu", "cpu.cfs_period_us"),
        number("memory", "memory.limit_in_bytes"),
        (V1 / "cpuset" / path.lstrip("/") / "cpuset.cpus").read_text().strip(),
    )


def _v2_read(directory: Path) -> tuple[int, int, int, int, str]:
    def text(name: str, default: str) -> str:
        file = directory / name
        return file.read_text().strip() if file.exists() else default

    weight = int(text("cpu.weight", "100"))
    quota, period = text("cpu.max", "max 100000").split()
    memory = text("memory.max", "max")
    return (
        weight,  # compared as a weight: see test_limits_land_in_the_tree_s_files
        -1 if quota == "max" else int(quota),
        int(period),
        -1 if memory == "max" else int(memory),
        text("cpuset.cpus", ""),
    )


@pytest.fixture(params=["fake", "v1-host", "v2-tree"])
def tree(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Tree]:
    path = f"/{PARENT}/limits-{secrets.token_hex(4)}/pod"
    if request.param == "fake":
        fake = FakeCgroups(cpus=2)
        fake.create(path)

        def read_fake() -> tuple[int, int, int, int, str]:
            limits = fake.limits.get(path, CgroupLimits())
            return (limits.cpu_shares, limits.cpu_quota_us, limits.cpu_period_us, limits.memory_limit_bytes,
                    limits.cpuset_cpus)  # fmt: skip

        yield Tree(fake, path, read_fake, refused_cpus="0-7")
        return
    if request.param == "v2-tree":
        root = tmp_path / "cgroup2"
        root.mkdir()
        (root / "cgroup.controllers").write_text("cpu cpuset memory pids\n")
        v2 = CgroupFs(root)
        v2.create(path)
        directory = root / path.lstrip("/")
        (directory / "cpuset.cpus.broken").mkdir()
        yield Tree(v2, path, lambda: _v2_read(directory), refused_cpus="", unified=True)
        return
    real = CgroupFs()
    real.create(path)
    try:
        yield Tree(real, path, lambda: _v1_read(path), refused_cpus="4095")
    finally:
        for cgroup in (path, path.rsplit("/", 1)[0], f"/{PARENT}"):
            with contextlib.suppress(Internal):
                real.remove(cgroup)


def _expected_shares(tree: Tree, shares: int) -> int:
    return shares_to_weight(shares) if tree.unified else shares


def test_limits_land_in_the_tree_s_files(tree: Tree) -> None:
    tree.cgroups.set_limits(
        tree.path,
        CgroupLimits(cpu_shares=512, cpu_quota_us=50000, cpu_period_us=100000, memory_limit_bytes=64 * MIB,
                     cpuset_cpus="0"),
    )  # fmt: skip
    assert tree.read() == (_expected_shares(tree, 512), 50000, 100000, 64 * MIB, "0")
    # Zero leaves a file alone; the quota alone keeps the period.
    tree.cgroups.set_limits(tree.path, CgroupLimits(cpu_quota_us=20000))
    assert tree.read() == (_expected_shares(tree, 512), 20000, 100000, 64 * MIB, "0")
    tree.cgroups.set_limits(tree.path, CgroupLimits(cpu_quota_us=-1, memory_limit_bytes=32 * MIB))
    assert tree.read()[1:4] == (-1, 100000, 32 * MIB)


def test_a_refused_write_leaves_every_file_as_it_was(tree: Tree) -> None:
    tree.cgroups.set_limits(tree.path, CgroupLimits(cpu_shares=256, memory_limit_bytes=64 * MIB))
    before = tree.read()
    if tree.unified:
        # A tree without a kernel refuses nothing: make cpuset.cpus a directory, which cannot be written.
        directory = Path(tree.cgroups.procs_files(tree.path)[0]).parent
        (directory / "cpuset.cpus.broken").rename(directory / "cpuset.cpus")
    with pytest.raises(Internal, match=r"cpuset\.cpus"):
        refused = CgroupLimits(cpu_shares=1024, cpu_quota_us=30000, cpu_period_us=50000,
                               memory_limit_bytes=96 * MIB, cpuset_cpus=tree.refused_cpus or "0")  # fmt: skip
        tree.cgroups.set_limits(tree.path, refused)
    if tree.unified:
        (Path(tree.cgroups.procs_files(tree.path)[0]).parent / "cpuset.cpus").rmdir()
    assert tree.read() == before


def test_unified_files_only_on_v2(tree: Tree) -> None:
    limits = CgroupLimits(unified=(("memory.high", str(48 * MIB)),))
    if not tree.unified:
        with pytest.raises(InvalidArgument, match="unified"):
            tree.cgroups.set_limits(tree.path, limits)
        return
    tree.cgroups.set_limits(tree.path, limits)
    directory = Path(tree.cgroups.procs_files(tree.path)[0]).parent
    assert (directory / "memory.high").read_text() == str(48 * MIB)


def test_an_absent_cgroup_is_an_error(tree: Tree) -> None:
    with pytest.raises(Internal, match="does not exist"):
        tree.cgroups.set_limits(tree.path + "/absent", CgroupLimits(cpu_shares=2))


@pytest.mark.parametrize("layout", ["fake", "v1-tree", "v2-tree"])
def test_hugepage_limits_land_in_the_hugetlb_files_even_when_zero(layout: str, tmp_path: Path) -> None:
    path = "/pod"
    root = tmp_path / "cgroup"
    wanted = CgroupLimits(cpu_shares=0, hugepage_limits=(("1GB", 0), ("2MB", 8 * MIB)))
    if layout == "fake":
        fake = FakeCgroups()
        fake.create(path)
        fake.set_limits(path, wanted)
        assert fake.limits[path].hugepage_limits == wanted.hugepage_limits
        return
    root.mkdir()
    if layout == "v2-tree":
        (root / "cgroup.controllers").write_text("cpu memory hugetlb pids\n")
        files = {"hugetlb.1GB.max": "0", "hugetlb.2MB.max": str(8 * MIB)}
        directory = root / "pod"
    else:
        for hierarchy in ("memory", "hugetlb"):
            (root / hierarchy).mkdir()
        files = {"hugetlb.1GB.limit_in_bytes": "0", "hugetlb.2MB.limit_in_bytes": str(8 * MIB)}
        directory = root / "hugetlb" / "pod"
    tree = CgroupFs(root)
    tree.create(path)
    tree.set_limits(path, wanted)
    assert {name: (directory / name).read_text() for name in files} == files


def test_hugepage_limits_without_a_v1_hugetlb_hierarchy_are_an_error(tmp_path: Path) -> None:
    """The domain never asks (the HugePages port says so); if it did, the error names the controller and
    nothing is written. A hybrid host's cgroup2 tree does not count."""
    for hierarchy in ("memory", "unified"):
        (tmp_path / hierarchy).mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    tree = CgroupFs(tmp_path)
    tree.create("/pod")
    with pytest.raises(Internal, match="hugetlb"):
        tree.set_limits("/pod", CgroupLimits(memory_limit_bytes=64 * MIB, hugepage_limits=(("2MB", 0),)))
    assert not (tmp_path / "memory" / "pod" / "memory.limit_in_bytes").exists()

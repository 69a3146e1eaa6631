"""The HugePages port: the fake and the sysfs adapter answer alike for the same host, on made-up cgroup
layouts (v1 with and without a hugetlb hierarchy, hybrid, v2) and on this host itself."""

from collections.abc import Callable
from pathlib import Path

import pytest

from adapters.cgroups.hugepages import SysfsHugePages, page_size_name
from ports.hugepages import HugePages
from tests.fakes.hugepages import FakeHugePages

V1_MOUNTS = """\
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
"""
HUGETLB_MOUNT = "42 31 0:39 / /sys/fs/cgroup/hugetlb rw,relatime - cgroup cgroup rw,hugetlb\n"
HYBRID_MOUNT = "41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate\n"
# A path under a mount that merely mentions hugetlb is no hugetlb hierarchy.
DECOY_MOUNT = "50 23 0:50 / /mnt/hugetlb rw,relatime - tmpfs hugetlb rw,size=1k\n"

# (name, mountinfo text or None for a v2 root, the v2 root's controllers, page sizes in kB, controller?)
LAYOUTS = [
    ("v1-without-hugetlb", V1_MOUNTS + DECOY_MOUNT, "", (2048, 1048576), False),
    ("v1-with-hugetlb", V1_MOUNTS + HUGETLB_MOUNT, "", (2048,), True),
    ("hybrid-hugetlb-in-cgroup2-only", V1_MOUNTS + HYBRID_MOUNT, "", (2048, 1048576), False),
    ("v2-with-hugetlb", None, "cpuset cpu io memory hugetlb pids", (2048, 1048576), True),
    ("v2-without-hugetlb", None, "cpu memory pids", (), False),
    ("no-hugepages-dir", V1_MOUNTS + HUGETLB_MOUNT, "", None, True),
]


def _sysfs(
    tmp_path: Path, mounts: str | None, controllers: str, sizes_kb: tuple[int, ...] | None
) -> HugePages:
    root, mountinfo, hugepages = tmp_path / "cgroup", tmp_path / "mountinfo", tmp_path / "hugepages"
    root.mkdir()
    if mounts is None:
        (root / "cgroup.controllers").write_text(controllers + "\n")
        mountinfo.write_text("")
    else:
        mountinfo.write_text(mounts)
    if sizes_kb is not None:
        hugepages.mkdir()
        for size in sizes_kb:
            (hugepages / f"hugepages-{size}kB").mkdir()
        (hugepages / "not-a-size").mkdir()
    return SysfsHugePages(root, mountinfo, hugepages)


@pytest.fixture(params=["fake", "sysfs"])
def build(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., HugePages]:
    def make(
        mounts: str | None, controllers: str, sizes_kb: tuple[int, ...] | None, controller: bool
    ) -> HugePages:
        if request.param == "fake":
            return FakeHugePages(controller, frozenset(page_size_name(kb * 1024) for kb in sizes_kb or ()))
        return _sysfs(tmp_path, mounts, controllers, sizes_kb)

    return make


@pytest.mark.parametrize(("name", "mounts", "controllers", "sizes_kb", "controller"), LAYOUTS)
def test_controller_and_page_sizes_per_layout(
    build: Callable[..., HugePages],
    name: str,
    mounts: str | None,
    controllers: str,
    sizes_kb: tuple[int, ...] | None,
    controller: bool,
) -> None:
    pages = build(mounts, controllers, sizes_kb, controller)
    assert pages.controller_available() is controller
    expected = {2048: "2MB", 1048576: "1GB"}
    assert pages.page_sizes() == frozenset(expected[kb] for kb in sizes_kb or ())


def test_this_host_matches_its_own_mounts() -> None:
    """On this host (../shared/MACHINE.md: v1 hybrid) hugetlb is in no v1 hierarchy."""
    host = SysfsHugePages()
    mounts = Path("/proc/self/mountinfo").read_text()
    v1_hugetlb = any(
        line.split(" - ")[1].split()[0] == "cgroup"
        and "hugetlb" in line.split(" - ")[1].split()[2].split(",")
        for line in mounts.splitlines()
    )
    v2_root = Path("/sys/fs/cgroup/cgroup.controllers")
    expected = "hugetlb" in v2_root.read_text().split() if v2_root.exists() else v1_hugetlb
    assert host.controller_available() is expected
    listed = [p.name for p in Path("/sys/kernel/mm/hugepages").iterdir()]
    assert host.page_sizes() == {page_size_name(int(name[len("hugepages-") : -2]) * 1024) for name in listed}


@pytest.mark.parametrize(
    ("size", "name"),
    [(64 * 1024, "64KB"), (2 << 20, "2MB"), (32 << 20, "32MB"), (1 << 30, "1GB"), (16 << 30, "16GB")],
)
def test_page_sizes_are_named_as_the_kubelet_names_them(size: int, name: str) -> None:
    assert page_size_name(size) == name

"""The v1 adapter against this machine's real cgroup tree: a process that works makes the numbers rise.

Machines of this kind run cgroup v1 (../shared/MACHINE.md). A pure cgroup v2 host has no v1 tree to read:
there the module is skipped, and the v2 reader is covered by test_cgroup_stats.py over a recorded tree and
by the systemd + cgroup v2 VM. A host with neither tree fails, so nothing is skipped by mistake.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.cgroups.v1 import CgroupV1StatsReader
from domain.errors import NotFound
from tests.host.cgroups import ROOT, Worker, scratch_cgroup

MIB = 1024 * 1024
_V1 = (Path(ROOT) / "memory" / "memory.stat").exists()
_PURE_V2 = not _V1 and (Path(ROOT) / "cgroup.controllers").exists()
pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(_PURE_V2, reason="a cgroup v2 host has no v1 tree; the v2 reader has its own tests"),
]


@pytest.fixture
def cgroup() -> Iterator[str]:
    if not _V1:
        pytest.fail(f"no cgroup v1 memory controller under {ROOT} (see ../shared/MACHINE.md)")
    with scratch_cgroup() as name:
        yield name


def test_numbers_rise_while_a_process_works(cgroup: str) -> None:
    reader = CgroupV1StatsReader(ROOT, "cgroupfs")
    empty = reader.read(cgroup)
    assert empty.pids_current == 0
    worker = Worker(cgroup)
    try:
        worker.work(8)
        before = reader.read(cgroup)
        worker.work(64)
        after = reader.read(cgroup)
    finally:
        worker.stop()
    assert before.pids_current is not None and before.pids_current >= 1
    assert worker.process.pid in after.procs
    assert after.cpu_usage_ns > before.cpu_usage_ns > 0
    assert after.cpu_user_ns + after.cpu_system_ns >= before.cpu_user_ns + before.cpu_system_ns
    assert after.memory_usage_bytes >= before.memory_usage_bytes + 48 * MIB
    assert after.memory_rss_bytes >= before.memory_rss_bytes + 48 * MIB
    assert after.memory_working_set_bytes >= before.memory_working_set_bytes + 48 * MIB
    assert after.page_faults > before.page_faults
    assert after.memory_limit_bytes is None
    assert after.memory_max_usage_bytes is not None
    assert after.memory_max_usage_bytes >= after.memory_usage_bytes


def test_a_removed_cgroup_is_not_found() -> None:
    reader = CgroupV1StatsReader(ROOT, "cgroupfs")
    with scratch_cgroup() as name:
        reader.read(name)
    with pytest.raises(NotFound):
        reader.read(name)

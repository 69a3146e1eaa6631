"""The CgroupStatsReader contract over recorded v1 and v2 trees (known values) and the fake.

The recorded trees in data/cgroup-v1 (cgroupfs layout) and data/cgroup-v2 (systemd layout) hold the same
logical cgroups with the same numbers written each version's way, so one expected sample serves both.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.cgroups.detect import host_cgroup_reader
from adapters.cgroups.v1 import CgroupV1StatsReader
from adapters.cgroups.v2 import CgroupV2StatsReader
from domain.errors import InvalidArgument, NotFound
from ports.cgroup_stats import CgroupSample, CgroupStatsReader, IoDevice
from tests.fakes.cgroup_stats import FakeCgroupStatsReader

DATA = Path(__file__).parent / "data"
MIB = 1024 * 1024

LIMITED = CgroupSample(
    cpu_usage_ns=5_000_000_000,
    cpu_user_ns=3_000_000_000,
    cpu_system_ns=2_000_000_000,
    cpu_periods=100,
    cpu_throttled_periods=7,
    cpu_throttled_ns=350_000_000,
    memory_usage_bytes=100 * MIB,
    memory_working_set_bytes=80 * MIB,  # usage - inactive file (20 MiB)
    memory_rss_bytes=50 * MIB,
    memory_cache_bytes=40 * MIB,
    memory_mapped_file_bytes=8 * MIB,
    memory_limit_bytes=256 * MIB,
    memory_max_usage_bytes=128 * MIB,
    memory_failcnt=3,
    page_faults=12345,
    major_page_faults=67,
    oom_kills=2,
    swap_usage_bytes=4 * MIB,
    swap_limit_bytes=256 * MIB,
    pids_current=4,
    pids_limit=1024,
    memory_kernel_bytes=MIB,
    cpu_shares=500,
    cpu_quota_us=50_000,
    cpu_period_us=100_000,
    io_devices=(IoDevice(8, 0, read_bytes=MIB, write_bytes=2 * MIB, reads=10, writes=20),),
    procs=(101, 102),
)

UNLIMITED = CgroupSample(
    cpu_usage_ns=2_000_000_000,
    cpu_user_ns=1_500_000_000,
    cpu_system_ns=500_000_000,
    cpu_periods=0,
    cpu_throttled_periods=0,
    cpu_throttled_ns=0,
    memory_usage_bytes=10 * MIB,
    memory_working_set_bytes=0,  # inactive file exceeds usage: clamp, never wrap
    memory_rss_bytes=4 * MIB,
    memory_cache_bytes=6 * MIB,
    memory_mapped_file_bytes=0,
    memory_limit_bytes=None,
    memory_max_usage_bytes=20 * MIB,
    memory_failcnt=0,
    page_faults=100,
    major_page_faults=0,
    oom_kills=0,
    swap_usage_bytes=None,
    swap_limit_bytes=None,
    pids_current=None,
    pids_limit=None,
)

POD = CgroupSample(
    cpu_usage_ns=9_000_000_000,
    cpu_user_ns=6_000_000_000,
    cpu_system_ns=3_000_000_000,
    cpu_periods=0,
    cpu_throttled_periods=0,
    cpu_throttled_ns=0,
    memory_usage_bytes=200 * MIB,
    memory_working_set_bytes=200 * MIB,
    memory_rss_bytes=100 * MIB,
    memory_cache_bytes=80 * MIB,
    memory_mapped_file_bytes=0,
    memory_limit_bytes=None,
    memory_max_usage_bytes=None,
    memory_failcnt=0,
    page_faults=20000,
    major_page_faults=100,
    oom_kills=0,
    swap_usage_bytes=0,
    swap_limit_bytes=None,
    pids_current=9,
    pids_limit=None,
)


@dataclass
class Subject:
    reader: CgroupStatsReader
    names: dict[str, str]  # logical case -> the cgroup as the OCI runtime was given it


V1_NAMES = {
    "limited": "/kubepods/burstable/podaaa/ctr1",
    "unlimited": "/kubepods/besteffort/podbbb/ctr2",
    "pod": "/kubepods/burstable/podaaa",
    "missing": "/kubepods/burstable/podzzz",
}
V2_NAMES = {
    "limited": "kubepods-burstable-podaaa.slice:pycrio:ctr1",
    "unlimited": "kubepods-besteffort-podbbb.slice:pycrio:ctr2",
    "pod": "kubepods-burstable-podaaa.slice",
    "missing": "kubepods-burstable-podzzz.slice",
}


@pytest.fixture(params=["fake", "v1", "v2"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "v1":
        return Subject(CgroupV1StatsReader(DATA / "cgroup-v1", "cgroupfs"), V1_NAMES)
    if request.param == "v2":
        return Subject(CgroupV2StatsReader(DATA / "cgroup-v2", "systemd"), V2_NAMES)
    fake = FakeCgroupStatsReader(
        1, {V1_NAMES["limited"]: LIMITED, V1_NAMES["unlimited"]: UNLIMITED, V1_NAMES["pod"]: POD}
    )
    return Subject(fake, V1_NAMES)


def test_limited_cgroup_reads_every_counter(subject: Subject) -> None:
    assert subject.reader.read(subject.names["limited"]) == LIMITED


def test_limits_give_available_bytes(subject: Subject) -> None:
    got = subject.reader.read(subject.names["limited"])
    assert got.memory_available_bytes == (256 - 80) * MIB
    assert got.swap_available_bytes == 252 * MIB


def test_unlimited_cgroup_has_no_limits_and_optional_controllers_absent(subject: Subject) -> None:
    got = subject.reader.read(subject.names["unlimited"])
    assert got == UNLIMITED
    assert got.memory_available_bytes is None
    assert got.swap_available_bytes is None


def test_pod_cgroup_counts_its_children(subject: Subject) -> None:
    assert subject.reader.read(subject.names["pod"]) == POD


def test_missing_cgroup_is_not_found(subject: Subject) -> None:
    with pytest.raises(NotFound):
        subject.reader.read(subject.names["missing"])


@pytest.mark.parametrize("bad", ["/kubepods/../../etc", "/kubepods/./x/.."])
def test_escaping_paths_are_refused(subject: Subject, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        subject.reader.read(bad)


def test_version_is_reported() -> None:
    assert CgroupV1StatsReader(DATA / "cgroup-v1").version == 1
    assert CgroupV2StatsReader(DATA / "cgroup-v2").version == 2


def test_detection_picks_v2_only_for_a_unified_root() -> None:
    assert host_cgroup_reader("cgroupfs", DATA / "cgroup-v2").version == 2
    assert host_cgroup_reader("cgroupfs", DATA / "cgroup-v1").version == 1

"""Parsing /proc for the bench's RSS and CPU rows, and finding mounts to clean up."""

import os
from pathlib import Path

from bench import cleanup, procstat

STAT = (
    "4242 (containerd-shim) S 1 4242 4242 0 -1 4194560 1557 0 0 0 120 35 0 0 20 0 11 0 6263 "
    "729051136 3355 18446744073709551615 1 1 0 0 0 0 0 0 2143420159 0 0 0 17 1 0 0 0 0 0"
)


def test_parse_stat_reads_ppid_and_cpu_ticks() -> None:
    fields = procstat.parse_stat(STAT)
    assert fields.comm == "containerd-shim"
    assert fields.state == "S" and fields.ppid == 1
    assert fields.utime_ticks == 120 and fields.stime_ticks == 35


def test_parse_stat_survives_spaces_and_parens_in_the_name() -> None:
    fields = procstat.parse_stat(STAT.replace("(containerd-shim)", "(a) b (c)"))
    assert fields.comm == "a) b (c"
    assert fields.ppid == 1 and fields.utime_ticks == 120


def test_parse_vmrss() -> None:
    status = "Name:\tpycrio\nVmPeak:\t  9000 kB\nVmRSS:\t   51234 kB\nThreads:\t4\n"
    assert procstat.parse_vmrss_kib(status) == 51234
    assert procstat.parse_vmrss_kib("Name:\tkthreadd\nThreads:\t1\n") is None


def test_parse_pss_of_smaps_rollup() -> None:
    rollup = (
        "55d0c0000000-7ffc00000000 ---p 00000000 00:00 0   [rollup]\n"
        "Rss:                1768 kB\nPss:                 221 kB\nPss_Dirty:           112 kB\n"
    )
    assert procstat.parse_pss_kib(rollup) == 221
    assert procstat.parse_pss_kib("") is None


def test_readers_on_this_process_and_on_a_gone_one() -> None:
    rss = procstat.rss_bytes(os.getpid())
    assert rss is not None and rss > 0
    pss = procstat.pss_bytes(os.getpid())
    assert pss is not None and 0 < pss <= rss
    assert procstat.total_pss([2**22 + 1]) == 0  # a gone pid counts nothing
    cpu = procstat.cpu_seconds(os.getpid())
    assert cpu is not None and cpu >= 0
    assert procstat.rss_bytes(2**22 + 1) is None  # above pid_max's default: never a live pid
    assert procstat.pss_bytes(2**22 + 1) is None
    assert procstat.cpu_seconds(2**22 + 1) is None


def test_processes_names_come_from_argv_not_the_cut_comm() -> None:
    me = next(info for info in procstat.processes() if info.pid == os.getpid())
    assert me.name.startswith("python")
    assert me.ppid == os.getppid()


def test_mounts_under_finds_deepest_first_and_decodes_escapes() -> None:
    mountinfo = "\n".join(
        [
            "30 1 0:1 / / rw - ext4 /dev/vda rw",
            "31 30 0:2 / /tmp/run rw - tmpfs t rw",
            "32 31 0:3 / /tmp/run/a/rootfs rw - overlay o rw",
            "33 31 0:4 / /tmp/run/with\\040space rw - tmpfs t rw",
            "34 30 0:5 / /tmp/runner rw - tmpfs t rw",
        ]
    )
    assert cleanup.mounts_under(Path("/tmp/run"), mountinfo) == [
        "/tmp/run/with space",
        "/tmp/run/a/rootfs",
        "/tmp/run",
    ]


def test_cgroup_dirs_of_an_absent_parent_is_empty() -> None:
    assert cleanup.cgroup_dirs("/pcbench-never-made") == []
    assert cleanup.cgroup_dirs("/") == []


def test_thread_runtimes_of_this_process_grow_with_work_and_count_new_threads() -> None:
    before = procstat.thread_runtimes_ns(os.getpid())
    assert os.getpid() in before  # the main thread's tid is the pid
    # schedstat of a running thread moves at scheduler ticks (a few ms): work for several of them.
    sum(range(5_000_000))
    after = procstat.thread_runtimes_ns(os.getpid())
    assert after[os.getpid()] > before[os.getpid()]
    assert procstat.runtime_delta_ns({1: 5}, {1: 8, 2: 4}) == 7  # thread 2 was born in between
    assert procstat.thread_runtimes_ns(2**22 + 1) == {}

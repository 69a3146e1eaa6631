"""Memory and CPU of processes, read from /proc (parsers are pure; the readers tolerate exited pids)."""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    ppid: int
    name: str  # basename of argv[0]; /proc's comm is cut at 15 characters ("containerd-shim")
    cmdline: str


@dataclass(frozen=True)
class StatFields:
    comm: str
    state: str
    ppid: int
    utime_ticks: int
    stime_ticks: int


def parse_stat(text: str) -> StatFields:
    """/proc/<pid>/stat: the command name may hold spaces and ')', so fields resume after the last ')'."""
    comm = text[text.index("(") + 1 : text.rindex(")")]
    fields = text[text.rindex(")") + 2 :].split()
    # After comm: state(3) ppid(4) ... utime(14) stime(15), numbered from 1 as in proc(5).
    return StatFields(comm, fields[0], int(fields[1]), int(fields[11]), int(fields[12]))


def _kib_line(text: str, name: str) -> int | None:
    """The kB figure of the `name:` line of a /proc file, None when the file has no such line."""
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return None


def parse_vmrss_kib(status: str) -> int | None:
    return _kib_line(status, "VmRSS")  # kernel threads and zombies have no VmRSS


def parse_pss_kib(smaps_rollup: str) -> int | None:
    """/proc/<pid>/smaps_rollup's `Pss:`: a shared page counts 1/sharers, so sums count it once."""
    return _kib_line(smaps_rollup, "Pss")  # kernel threads have an empty rollup


def _bytes_of(path: str, parse: Callable[[str], int | None]) -> int | None:
    try:
        kib = parse(Path(path).read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None if kib is None else kib * 1024


def rss_bytes(pid: int) -> int | None:
    return _bytes_of(f"/proc/{pid}/status", parse_vmrss_kib)


def pss_bytes(pid: int) -> int | None:
    return _bytes_of(f"/proc/{pid}/smaps_rollup", parse_pss_kib)


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU the process itself used (not its waited-for children)."""
    try:
        fields = parse_stat(Path(f"/proc/{pid}/stat").read_text())
    except (FileNotFoundError, ProcessLookupError):
        return None
    return (fields.utime_ticks + fields.stime_ticks) / CLOCK_TICKS


def thread_runtimes_ns(pid: int) -> dict[int, int]:
    """Nanoseconds on CPU per live thread (/proc/<pid>/task/*/schedstat, first field); {} if the pid is gone.

    utime+stime come in 10 ms clock ticks, sampled: a daemon that wakes briefly between ticks may be
    charged none. This counts nanoseconds, brought up to date whenever a thread sleeps (and at each
    scheduler tick while it runs), but forgets threads that exited.
    """
    found = {}
    try:
        tasks = list(os.scandir(f"/proc/{pid}/task"))
    except (FileNotFoundError, ProcessLookupError):
        return {}
    for task in tasks:
        try:
            found[int(task.name)] = int(Path(task.path, "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return found


def runtime_delta_ns(before: dict[int, int], after: dict[int, int]) -> int:
    """CPU time threads used between two readings; a thread born in between counts from zero."""
    return sum(ns - before.get(tid, 0) for tid, ns in after.items())


def processes() -> list[ProcessInfo]:
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = parse_stat(Path(entry.path, "stat").read_text())
            argv = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ProcessLookupError):
            continue
        name = os.path.basename(argv[0].decode(errors="replace")) if argv and argv[0] else stat.comm
        cmdline = " ".join(part.decode(errors="replace") for part in argv if part)
        found.append(ProcessInfo(int(entry.name), stat.ppid, name, cmdline))
    return found


def total_rss(pids: list[int]) -> int:
    return sum(rss for rss in (rss_bytes(pid) for pid in pids) if rss is not None)


def total_pss(pids: list[int]) -> int:
    return sum(pss for pss in (pss_bytes(pid) for pid in pids) if pss is not None)

"""ProcessStatsReader over /proc: fd entries, which of them are sockets, and each process's thread count."""

import os
from collections.abc import Sequence
from pathlib import Path

from ports.process_stats import ProcessCounts


class ProcfsProcessStats:
    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc

    def read(self, pids: Sequence[int]) -> ProcessCounts:
        fds = sockets = threads = 0
        for pid in pids:
            base = self._proc / str(pid)
            try:
                entries = os.listdir(base / "fd")
                thread_count = _threads(base / "status")
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                continue  # exited meanwhile
            fds += len(entries)
            threads += thread_count
            for entry in entries:
                try:
                    if os.readlink(base / "fd" / entry).startswith("socket:"):
                        sockets += 1
                except OSError:
                    continue  # closed meanwhile
        return ProcessCounts(fds, sockets, threads)


def _threads(status: Path) -> int:
    for line in status.read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    return 0

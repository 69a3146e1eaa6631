"""An in-memory ProcessStatsReader: each pid holds what the test says."""

from collections.abc import Sequence

from ports.process_stats import ProcessCounts


class FakeProcessStats:
    def __init__(self) -> None:
        self.processes: dict[int, ProcessCounts] = {}

    def read(self, pids: Sequence[int]) -> ProcessCounts:
        found = [self.processes[pid] for pid in pids if pid in self.processes]
        return ProcessCounts(
            file_descriptors=sum(p.file_descriptors for p in found),
            sockets=sum(p.sockets for p in found),
            threads=sum(p.threads for p in found),
        )

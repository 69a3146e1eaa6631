"""Counting what a container's processes hold: open file descriptors, sockets, threads."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ProcessCounts:
    file_descriptors: int
    sockets: int
    threads: int


class ProcessStatsReader(Protocol):
    def read(self, pids: Sequence[int]) -> ProcessCounts:
        """Totals over `pids`; processes that are gone by the time they are read are left out."""
        ...

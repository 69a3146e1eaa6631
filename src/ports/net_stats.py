"""Reading a pod's network interface counters from its network namespace."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class InterfaceCounters:
    name: str
    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


class NetworkStatsReader(Protocol):
    def read(self, netns_path: str | None) -> list[InterfaceCounters]:
        """Every interface of the namespace at `netns_path` (None: the daemon's own, for host-network pods).

        Raises domain.errors.NotFound when the namespace is gone.
        """
        ...

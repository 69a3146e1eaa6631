"""An in-memory NetworkStatsReader: namespaces and their counters are whatever the test sets."""

import threading
from dataclasses import replace

from domain.errors import NotFound
from ports.net_stats import InterfaceCounters


def idle(name: str) -> InterfaceCounters:
    return InterfaceCounters(name, 0, 0, 0, 0, 0, 0, 0, 0)


class FakeNetworkStatsReader:
    def __init__(self) -> None:
        self._namespaces: dict[str | None, dict[str, InterfaceCounters]] = {None: {"lo": idle("lo")}}
        self._lock = threading.Lock()

    def add(self, netns_path: str, *interfaces: str) -> None:
        with self._lock:
            self._namespaces[netns_path] = {name: idle(name) for name in ("lo", *interfaces)}

    def remove(self, netns_path: str) -> None:
        with self._lock:
            self._namespaces.pop(netns_path, None)

    def transfer(self, netns_path: str, interface: str, sent: int = 0, received: int = 0) -> None:
        """Count traffic on one interface (one packet per call and direction)."""
        with self._lock:
            old = self._namespaces[netns_path][interface]
            self._namespaces[netns_path][interface] = replace(
                old,
                tx_bytes=old.tx_bytes + sent,
                tx_packets=old.tx_packets + (1 if sent else 0),
                rx_bytes=old.rx_bytes + received,
                rx_packets=old.rx_packets + (1 if received else 0),
            )

    def read(self, netns_path: str | None) -> list[InterfaceCounters]:
        with self._lock:
            interfaces = self._namespaces.get(netns_path)
            if interfaces is None:
                raise NotFound(f"network namespace {netns_path} not found")
            return list(interfaces.values())

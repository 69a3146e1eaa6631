"""A RuntimeMetrics that remembers what it was told."""

import threading


class RecordingMetrics:
    def __init__(self) -> None:
        self.rpcs: list[tuple[str, str]] = []
        self.pull_bytes = 0
        self.pulls: list[tuple[bool, str]] = []
        self.trust: list[str] = []
        self.ooms = 0
        self.monitors_lost = 0
        self.events_dropped = 0
        self._lock = threading.Lock()

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        with self._lock:
            self.rpcs.append((method, code))

    def image_pull_bytes(self, count: int) -> None:
        with self._lock:
            self.pull_bytes += count

    def image_pull_finished(self, succeeded: bool, reason: str = "") -> None:
        with self._lock:
            self.pulls.append((succeeded, reason))

    def image_pull_trust(self, outcome: str) -> None:
        with self._lock:
            self.trust.append(outcome)

    def container_monitor_lost(self) -> None:
        with self._lock:
            self.monitors_lost += 1

    def container_oom_killed(self) -> None:
        with self._lock:
            self.ooms += 1

    def container_events_dropped(self, count: int) -> None:
        with self._lock:
            self.events_dropped += count

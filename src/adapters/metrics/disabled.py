"""What stands in for Prometheus when `metrics.enabled` is false: nothing could read the numbers, so
nothing records them, and prometheus_client (about 4.5 MiB of the daemon's memory) is never imported."""


class DiscardedMetrics:
    """A RuntimeMetrics that keeps nothing."""

    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        pass

    def image_pull_bytes(self, count: int) -> None:
        pass

    def image_pull_finished(self, succeeded: bool, reason: str = "") -> None:
        pass

    def image_pull_trust(self, outcome: str) -> None:
        pass

    def container_monitor_lost(self) -> None:
        pass

    def container_oom_killed(self) -> None:
        pass

    def container_events_dropped(self, count: int) -> None:
        pass


class NoMetricsEndpoint:
    """The background service in place of the /metrics endpoint: starts and stops nothing."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

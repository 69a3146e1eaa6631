"""What the runtime reports to operators' metrics (Prometheus on a real node)."""

from typing import Protocol


class RpcObserver(Protocol):
    def rpc_finished(self, method: str, code: str, seconds: float) -> None:
        """One CRI call ended (`code` is the gRPC status name, "OK" on success). Must not raise."""
        ...


class PullMetrics(Protocol):
    """What the image service reports of its pulls."""

    def image_pull_bytes(self, count: int) -> None:
        """Bytes received from a registry while pulling (call as they arrive)."""
        ...

    def image_pull_finished(self, succeeded: bool, reason: str = "") -> None:
        """A PullImage ended; `reason` is a short, fixed word for failures (e.g. the error class)."""
        ...

    def image_pull_trust(self, outcome: str) -> None:
        """A pull's signature-policy decision: "verified", "rejected" or "accepted_without_signature"."""
        ...


class RuntimeMetrics(RpcObserver, PullMetrics, Protocol):
    def container_monitor_lost(self) -> None:
        """A container's monitor (conmon) died while the container runs on (cri-o's
        containers_stopped_monitor_count)."""
        ...

    def container_oom_killed(self) -> None:
        """A container's process was killed by the kernel's OOM killer."""
        ...

    def container_events_dropped(self, count: int) -> None:
        """Events a slow GetContainerEvents client did not get."""
        ...

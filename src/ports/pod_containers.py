"""What the sandbox service needs from the containers of a pod (the containers service implements it)."""

from typing import Protocol


class PodContainers(Protocol):
    def stop_all(self, sandbox_id: str, timeout: float) -> None:
        """Stop every container of the pod, each within `timeout` seconds then killed."""
        ...

    def remove_all(self, sandbox_id: str) -> None:
        """Remove every container of the pod (stopping running ones first)."""
        ...

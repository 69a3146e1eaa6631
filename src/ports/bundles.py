"""Where a container's OCI bundle (config.json and the monitor's files) lives on the host."""

from pathlib import Path
from typing import Any, Protocol


class Bundles(Protocol):
    def write(self, container_id: str, spec: dict[str, Any]) -> Path:
        """Write config.json (atomically) into the container's bundle directory; returns the directory."""
        ...

    def path(self, container_id: str) -> Path: ...

    def remove(self, container_id: str) -> None:
        """Delete the bundle directory; idempotent."""
        ...

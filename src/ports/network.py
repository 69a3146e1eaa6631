"""The pod network (CNI on a real node)."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class NetworkReadiness:
    ready: bool
    reason: str = ""
    message: str = ""


class Network(Protocol):
    def readiness(self) -> NetworkReadiness:
        """Whether pods can get a network now; the reason and message say why not."""
        ...

"""What stats, metrics and events need to know about pods and containers, and nothing more.

The pods and containers services satisfy this narrow view at wiring time, so monitoring does not depend on
their internals (and works against the in-memory fake in tests).
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class PodInfo:
    id: str
    name: str
    namespace: str
    uid: str
    attempt: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # The pod cgroup as the kubelet gave it (linux.cgroup_parent), in the cgroup driver's form; "" if none.
    cgroup_parent: str = ""
    # Path of the pod's network namespace; None for host-network pods.
    netns_path: str | None = None
    ready: bool = True


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    pod_id: str
    name: str
    attempt: int = 0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    # The image as the kubelet named it (used as a metric label).
    image: str = ""
    # The container cgroup exactly as the OCI runtime was given it (linux.cgroupsPath).
    cgroup: str = ""
    # The container's writable layer (overlay upper dir); None when it has none.
    upper_dir: str | None = None
    running: bool = False
    # When its process started (ns since the epoch); 0 if it has not.
    started_at_ns: int = 0


class WorkloadInventory(Protocol):
    """A cheap, in-memory listing: called on every stats call."""

    def pods(self) -> list[PodInfo]: ...

    def containers(self) -> list[ContainerInfo]: ...

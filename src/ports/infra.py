"""The pod's infra process: it holds the pod's PID namespace (and keeps a process in the pod cgroup).

On a real node it is catatonit from the host, started in the pod's network, IPC and UTS namespaces in an
empty root, so no pause image is ever pulled.
"""

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class InfraSpec:
    sandbox_id: str
    # Namespace paths to join; empty means the host's.
    network: str = ""
    ipc: str = ""
    uts: str = ""
    # The pod's user namespace, joined first (it owns the others); "" for the host's.
    user: str = ""
    # A new PID namespace that the pod's containers share (NamespaceMode POD); else the host's.
    new_pid_namespace: bool = True
    # cgroup.procs files the process is written into before it runs (cgroupfs driver).
    cgroup_procs: tuple[str, ...] = ()


@dataclass(frozen=True)
class InfraProcess:
    pid: int
    # Start time in clock ticks since boot (/proc/<pid>/stat field 22): tells a reused pid from ours.
    start_time: int

    @property
    def pid_namespace(self) -> str:
        return f"/proc/{self.pid}/ns/pid"


class InfraProcesses(Protocol):
    def start(self, spec: InfraSpec) -> InfraProcess:
        """Start the infra process; it is running when this returns."""
        ...

    def find(self, sandbox_id: str) -> InfraProcess | None:
        """The sandbox's infra process as the adapter recorded it when starting it (crash recovery)."""
        ...

    def alive(self, process: InfraProcess) -> bool: ...

    def exited(self, processes: Collection[InfraProcess]) -> set[InfraProcess]:
        """Those of `processes` that no longer run: one look for all of them, for ListPodSandbox, which would
        otherwise ask `alive` for every pod on every call."""
        ...

    def stop(self, sandbox_id: str, process: InfraProcess | None, timeout: float) -> None:
        """Terminate it (or, when None, the one `find` knows) and wait until it is gone, then drop what was
        kept for it. Stopping a dead or unknown one is not an error."""
        ...

"""An OCI runtime (runc, crun): the low-level lifecycle of one container bundle.

Creation normally happens inside the container monitor (conmon runs `<runtime> create` itself so that it
can hold the container's stdio); `create` here is for callers that need no monitor. Every call names the
container by id; the runtime keeps its own state under its root directory. Checkpoints are written here
(the runtime calls CRIU); a restore runs under the monitor too, as a create does (`MonitoredCreate`).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from ports.streaming import ProcessStreams

RuntimeStatus = Literal["creating", "created", "running", "paused", "stopped"]

# ExecSync's answer is one gRPC message, and neither pycrio nor the kubelet takes more than 16 MiB in one:
# the output (both streams together) is cut below that, leaving room for the message's framing, and the cut
# output is returned (as cri-o does) rather than an error with nothing.
GRPC_MESSAGE_LIMIT = 16 * 1024 * 1024
MAX_EXEC_OUTPUT = GRPC_MESSAGE_LIMIT - 64 * 1024


@dataclass(frozen=True)
class RuntimeState:
    """What `<runtime> state` says (runtime-spec "State")."""

    id: str
    status: RuntimeStatus
    pid: int  # 0 once stopped
    bundle: str


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    truncated: bool = False  # the output passed MAX_EXEC_OUTPUT and was cut there


class OciRuntime(Protocol):
    @property
    def binary(self) -> str:
        """The runtime's executable (handed to conmon as --runtime)."""
        ...

    @property
    def root(self) -> str:
        """The runtime's state directory (its --root)."""
        ...

    def create(self, container_id: str, bundle: Path, pid_file: Path) -> None:
        """Create the container from bundle/config.json without starting its process."""
        ...

    def start(self, container_id: str) -> None:
        """Run the user process of a created container."""
        ...

    def state(self, container_id: str) -> RuntimeState | None:
        """The container's state, or None when the runtime does not know it."""
        ...

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        """Send a signal; a container that is already stopped or gone is not an error."""
        ...

    def delete(self, container_id: str, force: bool = False) -> None:
        """Forget the container and its cgroup; absent is not an error. `force` kills a running one first."""
        ...

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        """Apply OCI `linux.resources` to a created or running container."""
        ...

    def exec(self, container_id: str, process: Mapping[str, Any], streams: ProcessStreams) -> int:
        """Run `process` (an OCI process object) in the running container wired to `streams` (a tty when
        `streams.tty`); its exit code, -1 when `streams.cancelled` ended it first. Leaves no process
        behind."""
        ...

    def exec_sync(self, container_id: str, process: Mapping[str, Any], timeout: float) -> ExecResult:
        """Run `process` in the running container to its end and return its output (both streams together
        cut at MAX_EXEC_OUTPUT) and exit code. Past `timeout` seconds (0: none) the process and its
        children are killed and gone before this returns (timed_out). A process that cannot be started is
        an Internal error with the runtime's message."""
        ...

    def checkpoint_support(self) -> str:
        """Why this runtime cannot checkpoint containers on this host ("" when it can): the runtime lacks
        the command, CRIU is missing, or CRIU's own check of the kernel fails (its output, verbatim)."""
        ...

    def checkpoint(
        self, container_id: str, image_path: Path, work_path: Path, leave_running: bool, timeout: float
    ) -> None:
        """Dump the running container's processes as CRIU images into `image_path` (CRIU's log and stats go
        to `work_path`); with `leave_running` the container goes on running afterwards."""
        ...

"""The container monitor (conmon): holds a container's stdio, writes its CRI log and its exit status.

The monitor outlives the daemon: after a restart the exit status of a container that ended meanwhile is read
back from the monitor's exit file. It also reopens the log on request, so that the kubelet's log rotation
works. (ExecSync runs through the OCI runtime port, without a monitor.)
"""

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from ports.streaming import ProcessStreams


@dataclass(frozen=True)
class MonitoredCreate:
    """What the monitor needs to create (not start) a container through the OCI runtime."""

    container_id: str
    name: str
    bundle: Path
    log_path: str  # the kubelet's log path; CRI log format
    runtime_binary: str
    runtime_root: str
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    systemd_cgroup: bool = False
    # The log path came with the request (the kubelet's directory, not pycrio's): the monitor makes it and
    # hands it to conmon only as a regular file reached without symlinks, at create and at every reopen.
    log_path_from_request: bool = False
    # Bytes the log may grow to; a write past it starts the file afresh (conmon's --log-size-max). -1 = none.
    log_size_max: int = -1
    # A directory of CRIU images: the runtime restores the container from them (running at once) instead of
    # creating it (conmon's --restore).
    restore_from: str = ""


@dataclass(frozen=True)
class Created:
    pid: int  # the container's init process on the host
    monitor_pid: int


@dataclass(frozen=True)
class ExitStatus:
    exit_code: int
    finished_at: datetime
    oom_killed: bool


class ContainerMonitor(Protocol):
    def create(self, request: MonitoredCreate, timeout: float) -> Created:
        """Start the monitor, which runs `<runtime> create` (or `restore`, with `request.restore_from`);
        returns once the container is created (restored: running)."""
        ...

    def exit_status(self, container_id: str) -> ExitStatus | None:
        """The container's exit as the monitor recorded it, None while it has not exited."""
        ...

    def exited(self) -> set[str]:
        """Every container id whose exit the monitor has recorded (or is recording): those `exit_status`
        may answer for. One look for all containers, for list calls that would otherwise ask each one."""
        ...

    def monitor_alive(self, container_id: str) -> bool:
        """Whether the container's monitor process still runs."""
        ...

    def exited_monitors(self, container_ids: Collection[str]) -> set[str]:
        """Those of the containers whose watched process no longer runs: the monitor, or the container's own
        process once `watch_process` named it. Asking about a container watches it from then on (after a
        restart, the first ask watches every monitor again); a container without a monitor is answered."""
        ...

    def watch_process(self, container_id: str, pid: int) -> None:
        """Watch the container's own process in place of its monitor, which died without recording an exit:
        `exited_monitors` then answers for that process. Nothing changes when it is gone already."""
        ...

    def reopen_log(self, container_id: str) -> None:
        """Make the monitor close and reopen the container's log file (after the kubelet moved it)."""
        ...

    def attach(
        self, container_id: str, streams: ProcessStreams, stdin: bool, stdin_once: bool, tty: bool
    ) -> None:
        """Join the container's main process (created with these stdin/stdin_once/tty flags) until it exits,
        the client detaches or `streams.cancelled` is set."""
        ...

    def cleanup(self, container_id: str) -> None:
        """Remove the monitor's files for the container, stopping a monitor still running for it (a create
        cut short leaves one waiting on its runtime); idempotent."""
        ...

"""An in-memory container monitor over FakeMachine: CRI log files, exit records, ExecSync, log reopen."""

from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

from domain.errors import DeadlineExceeded, FailedPrecondition, NotFound
from ports.container_monitor import Created, ExitStatus, MonitoredCreate
from ports.streaming import ProcessStreams
from tests.fakes.oci_runtime import FakeContainer, FakeMachine, FakeOciRuntime


class FakeContainerMonitor:
    def __init__(self, runtime: FakeOciRuntime) -> None:
        self._runtime = runtime
        self._machine: FakeMachine = runtime.machine
        self._log_paths: dict[str, Path] = {}
        self._log_size_max: dict[str, int] = {}
        self._exits: dict[str, ExitStatus] = {}
        self._alive: set[str] = set()
        self._watching_process: set[str] = set()  # monitor lost: the container's own process is watched
        self.create_delay_exceeded = False  # set by tests: the next create times out
        self.before_create: Callable[[], None] | None = None  # set by tests: runs inside create (may block)

    def _write_log(self, container_id: str, stream: str, line: bytes) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f000+00:00")
        entry = f"{stamp} {stream} F ".encode() + line + b"\n"
        path = self._log_paths[container_id]
        limit = self._log_size_max.get(container_id, -1)
        if limit > 0 and path.exists() and path.stat().st_size + len(entry) > limit:
            path.write_bytes(b"")  # conmon starts the file afresh rather than pass the limit
        with path.open("ab") as handle:
            handle.write(entry)

    def _record_exit(self, container: FakeContainer) -> None:
        assert container.exit_code is not None and container.finished_at is not None
        self._exits[container.id] = ExitStatus(container.exit_code, container.finished_at, container.oom)
        self._alive.discard(container.id)

    def create(self, request: MonitoredCreate, timeout: float) -> Created:
        if self.before_create is not None:
            self.before_create()
        if self.create_delay_exceeded:
            self.create_delay_exceeded = False
            raise DeadlineExceeded(f"conmon for {request.container_id} did not answer within {timeout:g}s")
        log_path = Path(request.log_path)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.touch()
        self._log_paths[request.container_id] = log_path
        self._log_size_max[request.container_id] = request.log_size_max
        if request.restore_from:
            self._runtime.restore(request.container_id, request.bundle, Path(request.restore_from))
        else:
            self._runtime.create(request.container_id, request.bundle, request.bundle / "pidfile")
        with self._machine.lock:
            container = self._machine.containers[request.container_id]
            container.on_output = lambda stream, line: self._write_log(request.container_id, stream, line)
            container.on_exit = self._record_exit
            self._alive.add(request.container_id)
            return Created(pid=container.pid, monitor_pid=container.pid - 1)

    def exit_status(self, container_id: str) -> ExitStatus | None:
        return self._exits.get(container_id)

    def exited(self) -> set[str]:
        return set(self._exits)

    def monitor_alive(self, container_id: str) -> bool:
        return container_id in self._alive

    def exited_monitors(self, container_ids: Collection[str]) -> set[str]:
        with self._machine.lock:
            return {
                container_id
                for container_id in container_ids
                if container_id not in self._alive
                and (container_id not in self._watching_process or not self._process_runs(container_id))
            }

    def _process_runs(self, container_id: str) -> bool:
        container = self._machine.containers.get(container_id)
        return container is not None and container.status != "stopped"

    def watch_process(self, container_id: str, pid: int) -> None:
        with self._machine.lock:
            if self._process_runs(container_id):
                self._watching_process.add(container_id)

    def kill_monitor(self, container_id: str) -> None:
        """What a SIGKILL to conmon does: the container runs on, and its exit is never recorded."""
        with self._machine.lock:
            self._machine.containers[container_id].on_exit = None
            self._alive.discard(container_id)

    def reopen_log(self, container_id: str) -> None:
        if container_id not in self._log_paths:
            raise NotFound(f"container {container_id} has no monitor")
        if container_id not in self._alive:
            raise FailedPrecondition(f"container {container_id} is not running; its log cannot be reopened")
        self._log_paths[container_id].touch()

    def attach(
        self, container_id: str, streams: ProcessStreams, stdin: bool, stdin_once: bool, tty: bool
    ) -> None:
        """The fake's processes print only when they start: an attach sees no output and lasts until the
        container stops or the client goes away."""
        if container_id not in self._log_paths:
            raise NotFound(f"container {container_id} has no monitor")
        while container_id in self._alive and not streams.cancelled.wait(0.01):
            pass

    def cleanup(self, container_id: str) -> None:
        self._log_paths.pop(container_id, None)
        self._log_size_max.pop(container_id, None)
        self._exits.pop(container_id, None)
        self._alive.discard(container_id)
        self._watching_process.discard(container_id)

"""In-memory infra processes: a pid per sandbox, alive until stopped or killed by the test."""

import itertools
import threading
from collections.abc import Collection

from domain.errors import Internal
from ports.infra import InfraProcess, InfraSpec


class FakeInfraProcesses:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pids = itertools.count(40000)
        self.running: dict[int, InfraSpec] = {}
        self.fail_start = False

    def start(self, spec: InfraSpec) -> InfraProcess:
        if self.fail_start:
            raise Internal("fake infra process failed to start")
        with self._lock:
            pid = next(self._pids)
            self.running[pid] = spec
        return InfraProcess(pid=pid, start_time=pid * 7)

    def find(self, sandbox_id: str) -> InfraProcess | None:
        with self._lock:
            for pid, spec in self.running.items():
                if spec.sandbox_id == sandbox_id:
                    return InfraProcess(pid=pid, start_time=pid * 7)
        return None

    def alive(self, process: InfraProcess) -> bool:
        with self._lock:
            return process.pid in self.running

    def exited(self, processes: Collection[InfraProcess]) -> set[InfraProcess]:
        with self._lock:
            return {process for process in processes if process.pid not in self.running}

    def stop(self, sandbox_id: str, process: InfraProcess | None, timeout: float) -> None:
        process = process or self.find(sandbox_id)
        if process is not None:
            self.kill(process)

    def kill(self, process: InfraProcess) -> None:
        """The process died on its own (as if OOM-killed)."""
        with self._lock:
            self.running.pop(process.pid, None)

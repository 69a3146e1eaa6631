"""An in-memory OCI runtime whose containers run a tiny shell instead of real processes.

`FakeMachine` is the shared "kernel" of the fakes: FakeOciRuntime creates, signals and deletes containers in
it, FakeContainerMonitor reads their output and exit. A container's process is interpreted from its OCI
args: `sh -c "<commands>"` or a single command, where the commands understood are `echo [text] [>&2]`,
`exit N`, `true`, `false`, `sleep N` (blocks until killed), `tail /dev/zero` (allocates without end:
OOM-killed under a memory limit, blocks otherwise) and `head -c N /dev/zero | tr '\0' X` (N bytes of X).
"""

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from domain.errors import DeadlineExceeded, FailedPrecondition, Internal, NotFound
from ports.oci_runtime import MAX_EXEC_OUTPUT, ExecResult, RuntimeState, RuntimeStatus
from ports.streaming import ProcessStreams

_FILL = re.compile(r"head -c (\d+) /dev/zero \| tr '\\0' (\w)")


@dataclass
class ScriptOutcome:
    output: list[tuple[str, bytes]]  # (stream, line without newline)
    exit_code: int | None  # None: still running (blocked)
    oom: bool = False
    blocked_for: float = 0.0  # sleep N: how long it would block


def run_script(args: list[str], memory_limit: int) -> ScriptOutcome:
    """Interpret a container or exec process; see the module docstring for what is understood."""
    if len(args) >= 3 and args[0].endswith("sh") and args[1] == "-c":
        commands = [c.strip() for c in args[2].split(";") if c.strip()]
    else:
        commands = [" ".join(a.rsplit("/", 1)[-1] if i == 0 else a for i, a in enumerate(args))]
    output: list[tuple[str, bytes]] = []
    for command in commands:
        filled = _FILL.fullmatch(command)
        if filled:  # head -c N /dev/zero | tr '\0' X: N bytes of X
            output.append(("stdout", filled.group(2).encode() * int(filled.group(1))))
            continue
        words = command.split()
        name = words[0].rsplit("/", 1)[-1]
        if name == "echo":
            stream = "stderr" if words[-1] == ">&2" else "stdout"
            text = words[1:-1] if stream == "stderr" else words[1:]
            output.append((stream, " ".join(text).encode()))
        elif name == "exit":
            return ScriptOutcome(output, int(words[1]) if len(words) > 1 else 0)
        elif name == "true":
            continue
        elif name == "false":
            return ScriptOutcome(output, 1)
        elif name == "sleep":
            return ScriptOutcome(output, None, blocked_for=float(words[1]))
        elif name == "tail" and words[1:] == ["/dev/zero"]:
            if memory_limit:
                return ScriptOutcome(output, 137, oom=True)
            return ScriptOutcome(output, None, blocked_for=float("inf"))
        else:
            output.append(("stderr", f"sh: {name}: not found".encode()))
            return ScriptOutcome(output, 127)
    return ScriptOutcome(output, 0)


@dataclass
class FakeContainer:
    id: str
    bundle: Path
    spec: dict[str, Any]
    pid: int
    status: RuntimeStatus = "created"
    exit_code: int | None = None
    oom: bool = False
    finished_at: datetime | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    on_output: Callable[[str, bytes], None] | None = None
    on_exit: Callable[["FakeContainer"], None] | None = None
    restored_from: int = 0  # the pid whose checkpoint this container was restored from

    def memory_limit(self) -> int:
        return int(self.resources.get("memory", {}).get("limit", 0))


class FakeMachine:
    """The process table the fake runtime and fake monitor share."""

    def __init__(self) -> None:
        self.containers: dict[str, FakeContainer] = {}
        self.lock = threading.RLock()
        self._next_pid = 40000

    def new_pid(self) -> int:
        with self.lock:
            self._next_pid += 1
            return self._next_pid

    def finish(self, container: FakeContainer, exit_code: int, oom: bool = False) -> None:
        container.status = "stopped"
        container.exit_code = exit_code
        container.oom = oom
        container.finished_at = datetime.now(UTC)
        container.pid = 0
        if container.on_exit is not None:
            container.on_exit(container)


def _read_config_json(bundle: Path) -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((bundle / "config.json").read_text())
    return spec


class FakeOciRuntime:
    def __init__(
        self,
        machine: FakeMachine | None = None,
        root: str = "/run/fake-runtime",
        read_spec: Callable[[Path], dict[str, Any]] | None = None,
    ) -> None:
        self.machine = machine or FakeMachine()
        self._root = root
        self._read_spec = read_spec or _read_config_json
        self.signals: list[tuple[str, int]] = []  # every kill asked for: (container id, signal)
        self.kills_of_all: list[str] = []  # the container ids of every kill with all_processes
        self.deletes: list[tuple[str, bool]] = []  # every delete asked for: (container id, force)
        # What checkpoint_support answers: "" = checkpoints work, else the reason they do not.
        self.checkpoint_refusal = ""

    @property
    def binary(self) -> str:
        return "fake-runc"

    @property
    def root(self) -> str:
        return self._root

    def create(self, container_id: str, bundle: Path, pid_file: Path) -> None:
        with self.machine.lock:
            if container_id in self.machine.containers:
                raise Internal(f"fake-runc create {container_id}: container with given ID already exists")
            try:
                spec = self._read_spec(bundle)
            except (FileNotFoundError, KeyError):
                raise Internal(f"fake-runc create {container_id}: no config.json in {bundle}") from None
            container = FakeContainer(container_id, bundle, spec, self.machine.new_pid())
            container.resources = dict(spec.get("linux", {}).get("resources", {}))
            self.machine.containers[container_id] = container
        if pid_file.parent.is_dir():
            pid_file.write_text(str(container.pid))

    def _get(self, container_id: str) -> FakeContainer:
        container = self.machine.containers.get(container_id)
        if container is None:
            raise NotFound(f"container {container_id} is not known to fake-runc")
        return container

    def start(self, container_id: str) -> None:
        with self.machine.lock:
            container = self._get(container_id)
            if container.status != "created":
                raise FailedPrecondition(f"fake-runc start {container_id}: container is {container.status}")
            container.status = "running"
            outcome = run_script(list(container.spec["process"]["args"]), container.memory_limit())
            for stream, line in outcome.output:
                if container.on_output is not None:
                    container.on_output(stream, line)
            if outcome.exit_code is not None:
                self.machine.finish(container, outcome.exit_code, outcome.oom)

    def state(self, container_id: str) -> RuntimeState | None:
        with self.machine.lock:
            container = self.machine.containers.get(container_id)
            if container is None:
                return None
            return RuntimeState(container.id, container.status, container.pid, str(container.bundle))

    def kill(self, container_id: str, signal: int, all_processes: bool = False) -> None:
        with self.machine.lock:
            self.signals.append((container_id, signal))
            if all_processes:
                self.kills_of_all.append(container_id)
            container = self.machine.containers.get(container_id)
            if container is None or container.status == "stopped":
                return
            # A shell as PID 1 ignores signals it has no handler for; SIGKILL always works.
            if signal == 9 or container.status == "created":
                self.machine.finish(container, 128 + signal)

    def delete(self, container_id: str, force: bool = False) -> None:
        with self.machine.lock:
            self.deletes.append((container_id, force))
            container = self.machine.containers.get(container_id)
            if container is None:
                return
            if container.status in ("running", "paused"):
                if not force:
                    raise FailedPrecondition(f"fake-runc delete {container_id}: it is {container.status}")
                self.machine.finish(container, 137)
            del self.machine.containers[container_id]

    def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        with self.machine.lock:
            container = self._get(container_id)
            if container.status == "stopped":
                raise FailedPrecondition(f"fake-runc update {container_id}: container is stopped")
            for key, value in resources.items():
                if isinstance(value, dict):
                    container.resources.setdefault(key, {}).update(value)
                else:
                    container.resources[key] = value

    def exec(self, container_id: str, process: Mapping[str, Any], streams: ProcessStreams) -> int:
        """The script's output to the client's streams (a tty merges stderr into stdout); a command that
        blocks runs until the exec is cancelled (-1) or the container stops."""
        with self.machine.lock:
            container = self._get(container_id)
            if container.status != "running":
                raise FailedPrecondition(f"fake-runc exec {container_id}: container is {container.status}")
            outcome = run_script([str(a) for a in process["args"]], container.memory_limit())
        for stream, line in outcome.output:
            sink = streams.stdout if stream == "stdout" or streams.tty else streams.stderr
            if sink is not None:
                sink.write(line + b"\n")
        if outcome.exit_code is not None:
            return outcome.exit_code
        while not streams.cancelled.wait(0.01):
            if self.state(container_id) is None or not container.pid:
                return 137  # the container stopped under the exec
        return -1

    def exec_sync(self, container_id: str, process: Mapping[str, Any], timeout: float) -> ExecResult:
        """The script's output, cut at the cap; a command that blocks times out (or, without a timeout,
        is refused: nothing would end it)."""
        with self.machine.lock:
            container = self.machine.containers.get(container_id)
            if container is None or container.status != "running":
                raise Internal(f"exec in {container_id} failed: container is not running")
            outcome = run_script([str(a) for a in process["args"]], container.memory_limit())
        if outcome.exit_code is None and (timeout <= 0 or outcome.blocked_for > timeout):
            if timeout <= 0:
                raise DeadlineExceeded("fake exec blocks forever without a timeout")
            return ExecResult(-1, b"", b"", timed_out=True)
        stdout = b"".join(line + b"\n" for stream, line in outcome.output if stream == "stdout")
        stderr = b"".join(line + b"\n" for stream, line in outcome.output if stream == "stderr")
        truncated = len(stdout) + len(stderr) > MAX_EXEC_OUTPUT
        if truncated:
            stdout = stdout[:MAX_EXEC_OUTPUT]
            stderr = stderr[: MAX_EXEC_OUTPUT - len(stdout)]
        return ExecResult(outcome.exit_code or 0, stdout, stderr, truncated=truncated)

    def checkpoint_support(self) -> str:
        return self.checkpoint_refusal

    def checkpoint(
        self, container_id: str, image_path: Path, work_path: Path, leave_running: bool, timeout: float
    ) -> None:
        """Writes what CRIU would: an inventory.img (here naming the container's pid and args), a dump.log."""
        if self.checkpoint_refusal:
            raise Internal(f"fake-runc checkpoint {container_id}: {self.checkpoint_refusal}")
        with self.machine.lock:
            container = self._get(container_id)
            if container.status != "running":
                raise FailedPrecondition(
                    f"fake-runc checkpoint {container_id}: container is {container.status}"
                )
            image_path.mkdir(parents=True, exist_ok=True)
            dump = {"pid": container.pid, "args": container.spec["process"]["args"]}
            (image_path / "inventory.img").write_text(json.dumps(dump))
            (work_path / "dump.log").write_text("fake dump finished successfully\n")
            if not leave_running:
                self.machine.finish(container, 0)

    def restore(self, container_id: str, bundle: Path, image_path: Path) -> int:
        """For the fake monitor's `--restore`: a running container from a checkpoint's images."""
        inventory = json.loads((image_path / "inventory.img").read_text())
        if "pid" not in inventory:
            raise Internal(f"fake-runc restore {container_id}: criu failed: inventory.img is damaged")
        with self.machine.lock:
            if container_id in self.machine.containers:
                raise Internal(f"fake-runc restore {container_id}: container with given ID already exists")
            container = FakeContainer(container_id, bundle, self._read_spec(bundle), self.machine.new_pid())
            container.status = "running"
            container.restored_from = int(inventory["pid"])
            self.machine.containers[container_id] = container
            return container.pid

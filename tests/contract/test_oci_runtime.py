"""The OciRuntime contract, run against the fake, runc, and crun where the host's cgroups allow it."""

import contextlib
import ctypes.util
import json
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.runc.runtime import RuncRuntime
from domain.errors import FailedPrecondition, Internal, NotFound, PycrioError
from ports.oci_runtime import MAX_EXEC_OUTPUT, ExecResult, OciRuntime, RuntimeState
from ports.streaming import ProcessStreams
from tests.contract.container_host import (
    CGROUP_ROOT,
    cgroup_parent_for,
    make_bundle,
    marker,
    processes_matching,
    unique_id,
)
from tests.contract.runtimes import RUNTIME_BINARIES, refusal
from tests.fakes.oci_runtime import FakeOciRuntime
from tests.fakes.streaming import CollectedOutput

MiB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("orphan_reaper")


@pytest.fixture
def cgroup_parent() -> Iterator[str]:
    yield from cgroup_parent_for("oci")


@pytest.fixture(params=["fake", "runc", "crun"])
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OciRuntime]:
    if request.param == "fake":
        yield FakeOciRuntime(root=str(tmp_path / "fake-root"))
        return
    reason = refusal(request.param)
    if reason is not None:
        pytest.skip(reason)
    created: list[str] = []

    class TrackingRuntime(RuncRuntime):
        def create(self, container_id: str, bundle: Path, pid_file: Path) -> None:
            created.append(container_id)
            super().create(container_id, bundle, pid_file)

    real = TrackingRuntime(RUNTIME_BINARIES[request.param], str(tmp_path / "runtime-root"), timeout=60)
    yield real
    for container_id in created:  # every one, even when one of them fails
        with contextlib.suppress(PycrioError):
            real.delete(container_id, force=True)


def create(runtime: OciRuntime, tmp_path: Path, rootfs: Path, parent: str, command: list[str],
           memory_limit: int = 0) -> str:  # fmt: skip
    container_id = unique_id()
    bundle = tmp_path / container_id
    make_bundle(bundle, rootfs, container_id, parent, command, memory_limit=memory_limit)
    runtime.create(container_id, bundle, bundle / "pidfile")
    return container_id


def test_lifecycle_created_running_stopped_deleted(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sleep", marker(0)])
    state = runtime.state(container_id)
    assert state is not None and state.status == "created" and state.pid > 0
    assert state.bundle == str(tmp_path / container_id)
    runtime.start(container_id)
    running = runtime.state(container_id)
    assert running is not None and running.status == "running"
    runtime.kill(container_id, signal.SIGKILL)
    stopped = wait_for_status(runtime, container_id, "stopped")
    assert stopped.pid == 0
    runtime.delete(container_id)
    assert runtime.state(container_id) is None


def wait_for_status(runtime: OciRuntime, container_id: str, status: str, attempts: int = 200) -> RuntimeState:
    for _ in range(attempts):
        state = runtime.state(container_id)
        if state is not None and state.status == status:
            return state
        time.sleep(0.05)
    raise AssertionError(f"{container_id} never became {status}: {runtime.state(container_id)}")


def test_unknown_containers(runtime: OciRuntime) -> None:
    assert runtime.state("pctest-nope") is None
    runtime.delete("pctest-nope")
    runtime.kill("pctest-nope", signal.SIGKILL)
    with pytest.raises(NotFound):
        runtime.start("pctest-nope")


def test_kill_of_a_stopped_container_is_not_an_error(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sh", "-c", "exit 0"])
    runtime.start(container_id)
    wait_for_status(runtime, container_id, "stopped")
    runtime.kill(container_id, signal.SIGTERM)
    with pytest.raises(FailedPrecondition):
        runtime.start(container_id)
    runtime.delete(container_id)


def test_delete_of_a_running_container_needs_force(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sleep", marker(1)])
    runtime.start(container_id)
    with pytest.raises(FailedPrecondition):
        runtime.delete(container_id)
    runtime.delete(container_id, force=True)
    assert runtime.state(container_id) is None
    assert not processes_matching(f"sleep {marker(1)}")


def test_update_changes_the_memory_limit(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sleep", marker(2)],
                          memory_limit=64 * MiB)  # fmt: skip
    runtime.start(container_id)
    assert memory_limit(runtime, container_id, cgroup_parent) == 64 * MiB
    runtime.update(container_id, {"memory": {"limit": 96 * MiB, "swap": 96 * MiB}})
    assert memory_limit(runtime, container_id, cgroup_parent) == 96 * MiB
    runtime.delete(container_id, force=True)


def memory_limit(runtime: OciRuntime, container_id: str, parent: str) -> int:
    """The limit the container really has: its cgroup for real runtimes, the fake's own record otherwise."""
    if isinstance(runtime, FakeOciRuntime):
        return int(runtime.machine.containers[container_id].resources["memory"]["limit"])
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # cgroup v2 (the make vm-test guest)
        return int((CGROUP_ROOT / parent.lstrip("/") / f"pycrio-{container_id}" / "memory.max").read_text())
    memory = CGROUP_ROOT / "memory" / parent.lstrip("/") / f"pycrio-{container_id}"
    return int((memory / "memory.limit_in_bytes").read_text())


def test_update_of_an_unknown_container_is_not_found(runtime: OciRuntime) -> None:
    with pytest.raises(NotFound):
        runtime.update("pctest-nope", {"memory": {"limit": 64 * MiB}})


def test_exec_wires_the_process_to_the_streams_and_returns_its_exit_code(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sleep", marker(3)])
    runtime.start(container_id)
    process = json.loads((tmp_path / container_id / "config.json").read_text())["process"]
    process["args"] = ["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]
    out, err = CollectedOutput(), CollectedOutput()
    streams = ProcessStreams(None, out, err, False, None, threading.Event())
    assert runtime.exec(container_id, process, streams) == 3
    assert (out.data, err.data) == (b"out\n", b"err\n")
    runtime.delete(container_id, force=True)


# ---- ExecSync -------------------------------------------------------------------------------------------


@dataclass
class Running:
    """A running `sleep` container and its OCI process object, to swap an exec's args into."""

    runtime: OciRuntime
    container_id: str
    process: dict[str, Any]

    def exec_sync(self, args: list[str], timeout: float) -> ExecResult:
        return self.runtime.exec_sync(self.container_id, {**self.process, "args": args}, timeout)


@pytest.fixture
def running(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> Iterator[Running]:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sleep", marker(40)])
    runtime.start(container_id)
    process = json.loads((tmp_path / container_id / "config.json").read_text())["process"]
    yield Running(runtime, container_id, {**process, "terminal": False})
    runtime.delete(container_id, force=True)  # before cgroup_parent checks that its cgroups are gone


def test_exec_sync_output_and_exit_code(running: Running) -> None:
    result = running.exec_sync(["/bin/sh", "-c", "echo hello; echo oops >&2; exit 5"], timeout=30)
    assert (result.exit_code, result.stdout, result.stderr) == (5, b"hello\n", b"oops\n")
    assert not result.timed_out and not result.truncated


def test_exec_sync_timeout_kills_the_command(running: Running) -> None:
    result = running.exec_sync(["/bin/sleep", marker(42)], timeout=1)
    assert result.timed_out
    assert result.exit_code != 0
    # Gone once exec_sync returns, not even a zombie in the container's pid namespace (critest checks
    # this with pgrep right after the timed-out ExecSync).
    listing = running.exec_sync(["/bin/sh", "-c", "cat /proc/[0-9]*/stat"], 10)
    assert b"(sleep) Z" not in listing.stdout, listing.stdout
    assert not processes_matching(f"sleep {marker(42)}")


def test_exec_sync_output_is_capped(running: Running) -> None:
    count = MAX_EXEC_OUTPUT + 4 * MiB
    result = running.exec_sync(["/bin/sh", "-c", f"head -c {count} /dev/zero | tr '\\0' a"], timeout=60)
    assert result.truncated
    assert len(result.stdout) == MAX_EXEC_OUTPUT
    assert set(result.stdout) == {ord("a")}


@pytest.mark.parametrize("runtime", ["runc", "crun"], indirect=True)
@pytest.mark.parametrize(
    ("script", "exit_code"),
    [("kill -9 $$", 137), ("exit 255", 255)],  # 128 + the signal; 255 is not mistaken for a runtime failure
)
def test_exec_sync_exit_code_is_the_commands(running: Running, script: str, exit_code: int) -> None:
    result = running.exec_sync(["/bin/sh", "-c", script], timeout=30)
    assert (result.exit_code, result.stdout, result.stderr, result.timed_out) == (exit_code, b"", b"", False)


@pytest.mark.parametrize("runtime", ["runc", "crun"], indirect=True)
def test_exec_sync_of_a_missing_executable_is_an_internal_error_naming_it(running: Running) -> None:
    with pytest.raises(Internal, match=f"exec in {running.container_id} failed: .*/no-such-binary"):
        running.exec_sync(["/no-such-binary"], timeout=30)


@pytest.mark.parametrize("runtime", ["runc", "crun"], indirect=True)
def test_exec_sync_ends_with_the_command_even_when_a_child_keeps_its_output_open(running: Running) -> None:
    result = running.exec_sync(["/bin/sh", "-c", f"sleep {marker(48)} & echo started"], timeout=0)
    assert (result.exit_code, result.stdout, result.timed_out) == (0, b"started\n", False)
    running.runtime.delete(running.container_id, force=True)
    assert not processes_matching(f"sleep {marker(48)}")


# ---- Checkpoint -----------------------------------------------------------------------------------------


def _can_checkpoint(runtime: OciRuntime) -> bool:
    """Found without the adapter: the runtime has the command and CRIU accepts this kernel."""
    if isinstance(runtime, FakeOciRuntime):
        return not runtime.checkpoint_refusal
    has_command = subprocess.run([runtime.binary, "checkpoint", "--help"], capture_output=True, check=False)
    version = subprocess.run([runtime.binary, "--version"], capture_output=True, check=False).stdout
    libcriu = not version.startswith(b"crun") or ctypes.util.find_library("criu") is not None  # crun loads it
    criu = shutil.which("criu")
    criu_check = subprocess.run([criu, "check"], capture_output=True, check=False) if criu else None
    return has_command.returncode == 0 and libcriu and criu_check is not None and criu_check.returncode == 0


def test_checkpoint_leaves_criu_images_and_the_container_running_or_says_why_it_cannot(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    """In the VM (Debian's kernel) runc checkpoints; on this host CRIU rejects the kernel, crun (1.8.1) has no
    checkpoint command: then the reason says so, and a checkpoint fails with the runtime's error."""
    # Created here without a monitor, the process would inherit the stderr `create` reads runc's errors
    # from, a deleted temporary file outside the container that CRIU cannot dump (conmon gives pipes).
    # A loop, not a lone sleep: the dump interrupts the sleep's nanosleep and the kernel cannot restart it
    # (CRIU's parasite ran syscalls in between), so busybox's sleep returns early and exits 0.
    command = ["/bin/sh", "-c", f"exec >/dev/null 2>&1; while :; do /bin/sleep {marker(3)}; done"]
    if isinstance(runtime, FakeOciRuntime):
        command = ["/bin/sleep", marker(3)]
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, command)
    try:
        runtime.start(container_id)
        images, work = tmp_path / "images", tmp_path / "work"
        work.mkdir()
        reason = runtime.checkpoint_support()
        if not _can_checkpoint(runtime):
            assert "criu" in reason.lower() or "checkpoint" in reason.lower(), reason
            with pytest.raises(PycrioError):
                runtime.checkpoint(container_id, images, work, leave_running=True, timeout=60)
        else:
            assert reason == ""
            runtime.checkpoint(container_id, images, work, leave_running=True, timeout=60)
            assert (images / "inventory.img").is_file()
            assert (work / "dump.log").is_file()
        state = runtime.state(container_id)
        assert state is not None and state.status == "running"  # refused or done, it goes on running
        assert processes_matching(f"sleep {marker(3)}") or isinstance(runtime, FakeOciRuntime)
    finally:
        runtime.delete(container_id, force=True)


def test_checkpoint_of_a_container_that_is_not_running_fails(
    runtime: OciRuntime, tmp_path: Path, busybox_rootfs: Path, cgroup_parent: str
) -> None:
    container_id = create(runtime, tmp_path, busybox_rootfs, cgroup_parent, ["/bin/sleep", marker(4)])
    images, work = tmp_path / "images", tmp_path / "work"
    work.mkdir()
    try:
        with pytest.raises(PycrioError):
            runtime.checkpoint(container_id, images, work, leave_running=True, timeout=60)
        with pytest.raises(PycrioError):
            runtime.checkpoint("pctest-nope", images, work, leave_running=True, timeout=60)
    finally:
        runtime.delete(container_id, force=True)

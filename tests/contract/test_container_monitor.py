"""The ContainerMonitor contract: the fake, and conmon over runc (and crun where the host allows it).

Each test creates a container through the monitor, starts it with the runtime and checks what the kubelet
relies on: CRI log lines for both streams, exit codes, OOM kills, log reopening, TTY output, and exit
statuses that a new monitor object (a restarted daemon) still reads.
"""

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from adapters.conmon.log_format import parse_line
from adapters.conmon.monitor import ConmonMonitor
from adapters.runc.runtime import RuncRuntime
from domain.errors import FailedPrecondition, PycrioError
from ports.container_monitor import ContainerMonitor, ExitStatus, MonitoredCreate
from ports.oci_runtime import OciRuntime
from tests.contract.container_host import (
    cgroup_parent_for,
    make_bundle,
    marker,
    processes_matching,
    unique_id,
)
from tests.contract.runtimes import RUNTIME_BINARIES, refusal
from tests.fakes.container_monitor import FakeContainerMonitor
from tests.fakes.oci_runtime import FakeOciRuntime

MiB = 1024 * 1024


pytestmark = pytest.mark.usefixtures("orphan_reaper")


@dataclass
class Host:
    runtime: OciRuntime
    monitor: ContainerMonitor
    new_monitor: Any  # () -> a fresh monitor over the same state, as after a daemon restart
    work: Path
    rootfs: Path
    cgroup_parent: str
    created: list[str]
    kill_monitor: Any  # (container id) -> None: SIGKILL to its monitor, which records nothing then

    def create(
        self, command: list[str], memory_limit: int = 0, tty: bool = False, log_size_max: int = -1
    ) -> MonitoredCreate:
        container_id = unique_id()
        bundle = self.work / container_id
        make_bundle(bundle, self.rootfs, container_id, self.cgroup_parent, command, memory_limit, tty)
        request = MonitoredCreate(
            container_id=container_id,
            name=container_id,
            bundle=bundle,
            log_path=str(self.work / "logs" / f"{container_id}.log"),
            runtime_binary=self.runtime.binary,
            runtime_root=self.runtime.root,
            tty=tty,
            log_size_max=log_size_max,
        )
        self.created.append(container_id)
        created = self.monitor.create(request, timeout=60)
        assert created.pid > 0 and created.monitor_pid > 0
        return request

    def run(self, command: list[str], memory_limit: int = 0, tty: bool = False) -> MonitoredCreate:
        request = self.create(command, memory_limit, tty)
        self.runtime.start(request.container_id)
        return request

    def wait_exit(self, container_id: str) -> ExitStatus:
        for _ in range(400):
            status = self.monitor.exit_status(container_id)
            if status is not None:
                return status
            time.sleep(0.05)
        raise AssertionError(f"{container_id} did not exit")


@pytest.fixture(params=["fake", "runc", "crun"])
def host(request: pytest.FixtureRequest, tmp_path: Path, busybox_rootfs: Path) -> Iterator[Host]:
    parents = cgroup_parent_for("monitor")
    parent = next(parents)
    created: list[str] = []
    runtime: OciRuntime
    monitor: ContainerMonitor
    if request.param == "fake":
        fake_runtime = FakeOciRuntime()
        fake_monitor = FakeContainerMonitor(fake_runtime)
        runtime, monitor = fake_runtime, fake_monitor

        def new_monitor() -> ContainerMonitor:
            return fake_monitor  # the fake's state lives in the fake machine, like conmon's on disk

        kill_monitor = fake_monitor.kill_monitor
    else:
        reason = refusal(request.param)
        if reason is not None:
            next(parents, None)
            pytest.skip(reason)
        runtime = RuncRuntime(RUNTIME_BINARIES[request.param], str(tmp_path / "runtime-root"), timeout=60)

        def new_monitor() -> ContainerMonitor:
            return ConmonMonitor(
                "/usr/bin/conmon", tmp_path / "persist", tmp_path / "exits", tmp_path / "socks"
            )

        monitor = new_monitor()

        def kill_monitor(container_id: str) -> None:
            pid = int((tmp_path / "persist" / container_id / "conmon.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            while monitor.monitor_alive(container_id):  # reaped by the orphan reaper
                time.sleep(0.01)

    yield Host(runtime, monitor, new_monitor, tmp_path, busybox_rootfs, parent, created, kill_monitor)
    for container_id in created:  # every one, even when one of them fails
        with contextlib.suppress(PycrioError):
            runtime.delete(container_id, force=True)
        monitor.cleanup(container_id)
    next(parents, None)


def log_entries(path: str) -> list[tuple[str, bytes]]:
    entries = []
    for line in Path(path).read_bytes().splitlines():
        entry = parse_line(line)
        assert entry is not None, f"not a CRI log line: {line!r}"
        entries.append((entry.stream, entry.content))
    return entries


def test_exit_code_and_both_streams_in_cri_log_format(host: Host) -> None:
    request = host.run(["/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 3"])
    status = host.wait_exit(request.container_id)
    assert status.exit_code == 3 and not status.oom_killed
    # Two pipes: the order between the streams is not kept, the order within each is.
    assert sorted(log_entries(request.log_path)) == [("stderr", b"to-err"), ("stdout", b"to-out")]
    assert abs(status.finished_at.timestamp() - time.time()) < 600


def test_zero_exit(host: Host) -> None:
    request = host.run(["/bin/true"])
    assert host.wait_exit(request.container_id).exit_code == 0


def test_kill_gives_137_and_the_exit_survives_a_new_monitor(host: Host) -> None:
    request = host.run(["/bin/sleep", marker(0)])
    assert host.monitor.exit_status(request.container_id) is None
    assert request.container_id not in host.monitor.exited()
    assert host.monitor.monitor_alive(request.container_id)
    host.runtime.kill(request.container_id, signal.SIGKILL)
    assert host.wait_exit(request.container_id).exit_code == 137
    assert request.container_id in host.monitor.exited()
    restarted = host.new_monitor()
    status = restarted.exit_status(request.container_id)
    assert status is not None and status.exit_code == 137
    assert request.container_id in restarted.exited()
    assert not processes_matching(f"sleep {marker(0)}")


def test_a_killed_monitor_is_answered_then_the_container_s_own_process(host: Host) -> None:
    request = host.run(["/bin/sleep", marker(6)])
    container_id = request.container_id
    assert host.monitor.exited_monitors([container_id]) == set()
    host.kill_monitor(container_id)
    assert host.monitor.exited_monitors([container_id]) == {container_id}
    state = host.runtime.state(container_id)
    assert state is not None
    host.monitor.watch_process(container_id, state.pid)
    assert host.monitor.exited_monitors([container_id]) == set()  # its own process runs on, unmonitored
    host.runtime.kill(container_id, signal.SIGKILL)
    for _ in range(400):
        if host.monitor.exited_monitors([container_id]):
            break
        time.sleep(0.05)
    assert host.monitor.exited_monitors([container_id]) == {container_id}
    assert host.monitor.exit_status(container_id) is None  # nobody recorded it


def test_oom_kill_under_a_memory_limit(host: Host) -> None:
    request = host.run(["/bin/sh", "-c", "tail /dev/zero"], memory_limit=16 * MiB)
    status = host.wait_exit(request.container_id)
    assert status.oom_killed
    assert status.exit_code == 137


def test_reopen_log_recreates_a_moved_log(host: Host) -> None:
    request = host.run(["/bin/sleep", marker(5)])
    log = Path(request.log_path)
    log.rename(log.with_suffix(".1"))
    host.monitor.reopen_log(request.container_id)
    assert log.exists(), "the new log file exists once reopen_log returns, as the kubelet expects"
    host.runtime.kill(request.container_id, signal.SIGKILL)
    host.wait_exit(request.container_id)
    for _ in range(100):
        if not host.monitor.monitor_alive(request.container_id):
            break
        time.sleep(0.05)
    with pytest.raises(FailedPrecondition):
        host.monitor.reopen_log(request.container_id)


def test_log_size_limit_starts_the_log_afresh_and_reopen_still_works(host: Host) -> None:
    lines = "; ".join(f"echo line-{i:04d}-{'x' * 60}" for i in range(300))  # ~30 KiB of CRI log
    request = host.create(["/bin/sh", "-c", f"{lines}; sleep {marker(6)}"], log_size_max=8192)
    host.runtime.start(request.container_id)
    log = Path(request.log_path)
    for _ in range(400):
        if "line-0299-" in log.read_text():
            break
        time.sleep(0.05)
    text = log.read_text()
    assert "line-0299-" in text, "the last line is written"
    assert "line-0000-" not in text, "the start went when the file was started afresh"
    assert 0 < log.stat().st_size <= 8192
    log.rename(log.with_suffix(".1"))  # the kubelet's rotation
    host.monitor.reopen_log(request.container_id)
    assert log.exists()


def test_tty_output_goes_to_the_log_as_stdout(host: Host) -> None:
    request = host.run(["/bin/sh", "-c", "echo on-a-tty"], tty=True)
    assert host.wait_exit(request.container_id).exit_code == 0
    entries = log_entries(request.log_path)
    assert entries and all(stream == "stdout" for stream, _ in entries)
    assert b"on-a-tty" in b"".join(content for _, content in entries)


def test_cleanup_is_idempotent(host: Host) -> None:
    request = host.run(["/bin/true"])
    host.wait_exit(request.container_id)
    host.runtime.delete(request.container_id)
    host.monitor.cleanup(request.container_id)
    host.monitor.cleanup(request.container_id)
    assert host.monitor.exit_status(request.container_id) is None
    assert request.container_id not in host.monitor.exited()


def exec_process(args: list[str]) -> dict[str, object]:
    return {"args": args, "cwd": "/", "env": ["PATH=/bin"], "user": {"uid": 0, "gid": 0}, "terminal": False}


def test_a_checkpointed_container_is_restored_running_under_the_monitor(host: Host) -> None:
    """The monitor's restore (conmon --restore: `runc restore --detach`) from CRIU images of a container
    that ran under another monitor: it runs at once, with no start, and its exit is recorded as usual."""
    reason = host.runtime.checkpoint_support()
    if reason:  # on this host: CRIU rejects the kernel (docs/containers.md); make vm-test runs this case
        pytest.skip(f"checkpoint/restore unavailable here: {reason}")
    # A loop: a restored sleep's nanosleep returns EINTR (CRIU cannot restore the kernel's restart state)
    # and busybox's sleep then exits 0, as the process would after any interrupted sleep.
    command = ["/bin/sh", "-c", f"while :; do /bin/sleep {marker(7)}; done"]
    if isinstance(host.runtime, FakeOciRuntime):
        command = ["/bin/sleep", marker(7)]  # the fake runs no shell
    first = host.run(command)
    images, work = host.work / "images", host.work / "dump"
    work.mkdir()
    host.runtime.checkpoint(first.container_id, images, work, leave_running=False, timeout=60)
    host.wait_exit(first.container_id)
    host.runtime.delete(first.container_id, force=True)  # its cgroup is the restored one's

    container_id = unique_id()
    bundle = host.work / container_id
    spec = json.loads((first.bundle / "config.json").read_text())
    bundle.mkdir()
    (bundle / "config.json").write_text(json.dumps(spec))
    log_path = str(host.work / "logs" / f"{container_id}.log")
    restored = replace(
        first, container_id=container_id, name=container_id, bundle=bundle, log_path=log_path,
        restore_from=str(images),
    )  # fmt: skip
    host.created.append(container_id)
    created = host.monitor.create(restored, timeout=60)
    assert created.pid > 0
    state = host.runtime.state(container_id)
    assert state is not None and state.status == "running"
    host.runtime.kill(container_id, signal.SIGKILL)
    assert host.wait_exit(container_id).exit_code == 137

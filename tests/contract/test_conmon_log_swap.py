"""conmon opens the log by name after pycrio checked it: a swap in between must not go unnoticed.

The swap is forced, not raced: the monitor is given a conmon wrapper that replaces the checked log file with a
symlink and then runs the real conmon, which is exactly "after pycrio's check, before conmon's open". For the
reopen, the swap happens as pycrio signals conmon (after its check of `<log>.tmp`). Real conmon and runc.
"""

import contextlib
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.conmon import ctl
from adapters.conmon.monitor import ConmonMonitor
from adapters.runc.runtime import RuncRuntime
from domain.errors import InvalidArgument, PycrioError
from ports.container_monitor import MonitoredCreate
from tests.contract.container_host import cgroup_parent_for, make_bundle, processes_matching, unique_id
from tests.contract.runtimes import RUNTIME_BINARIES

pytestmark = pytest.mark.usefixtures("orphan_reaper")

SECRET = "root:secret-hash:19000::::::\n"


@dataclass
class Setup:
    runtime: RuncRuntime
    work: Path
    rootfs: Path
    parent: str
    victim: Path
    created: list[tuple[str, ConmonMonitor]]

    def request(self, container_id: str, command: list[str]) -> MonitoredCreate:
        bundle = self.work / container_id
        make_bundle(bundle, self.rootfs, container_id, self.parent, command)
        log = str(self.work / "logs" / f"{container_id}.log")
        binary, root = self.runtime.binary, self.runtime.root
        return MonitoredCreate(
            container_id, container_id, bundle, log, binary, root, log_path_from_request=True
        )

    def monitor(self, conmon: str = "/usr/bin/conmon") -> ConmonMonitor:
        work = self.work
        return ConmonMonitor(conmon, work / "persist", work / "exits", work / "socks")


@pytest.fixture
def setup(tmp_path: Path, busybox_rootfs: Path) -> Iterator[Setup]:
    parents = cgroup_parent_for("logswap")
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "shadow"
    victim.write_text(SECRET)
    runtime = RuncRuntime(RUNTIME_BINARIES["runc"], str(tmp_path / "runtime-root"), timeout=60)
    result = Setup(runtime, tmp_path, busybox_rootfs, next(parents), victim, [])
    yield result
    for container_id, monitor in result.created:
        with contextlib.suppress(PycrioError):
            runtime.delete(container_id, force=True)
        monitor.cleanup(container_id)
    next(parents, None)


def swapping_conmon(work: Path, log_path: str, target: Path) -> str:
    """A conmon that first does what a racing writer of the log directory would."""
    script = work / "conmon-after-a-swap"
    script.write_text(
        "#!/bin/sh\n"
        f"mv '{log_path}' '{log_path}.checked'\n"
        f"ln -s '{target}' '{log_path}'\n"
        'exec /usr/bin/conmon "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def conmon_of(container_id: str) -> list[int]:
    return processes_matching(f"-c {container_id} ")


def test_a_log_swapped_for_a_symlink_before_conmon_opens_it_fails_the_create(setup: Setup) -> None:
    container_id = unique_id()
    request = setup.request(container_id, ["echo", "written through the swapped log"])
    monitor = setup.monitor(swapping_conmon(setup.work, request.log_path, setup.victim))
    setup.created.append((container_id, monitor))
    with pytest.raises(InvalidArgument, match=r"log_path: .* replaced .* before conmon opened it at create"):
        monitor.create(request, timeout=60)
    assert stat.S_ISLNK(os.lstat(request.log_path).st_mode)  # the swap did happen
    assert not conmon_of(container_id)  # killed, not left holding the victim open
    with contextlib.suppress(PycrioError):
        setup.runtime.start(container_id)  # even a start after the refusal writes nowhere
    assert setup.victim.read_text() == SECRET


def test_an_unswapped_log_passes_the_check(setup: Setup) -> None:
    """The check must not refuse the ordinary case (conmon run through the same kind of wrapper)."""
    container_id = unique_id()
    request = setup.request(container_id, ["echo", "hello"])
    wrapper = setup.work / "plain-conmon"
    wrapper.write_text('#!/bin/sh\nexec /usr/bin/conmon "$@"\n')
    wrapper.chmod(0o755)
    monitor = setup.monitor(str(wrapper))
    setup.created.append((container_id, monitor))
    created = monitor.create(request, timeout=60)
    assert created.monitor_pid in conmon_of(container_id)
    setup.runtime.start(container_id)
    for _ in range(400):
        if monitor.exit_status(container_id) is not None:
            break
        time.sleep(0.05)
    assert b"hello" in Path(request.log_path).read_bytes()


def test_a_tmp_log_swapped_as_conmon_reopens_stops_conmon(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """conmon 2.1 truncates `<log>.tmp` as it opens it, so the link's target is emptied before pycrio can
    tell; what the check prevents is the container's output going on into it."""
    container_id = unique_id()
    request = setup.request(container_id, ["sleep", "300"])
    monitor = setup.monitor()
    setup.created.append((container_id, monitor))
    monitor.create(request, timeout=60)
    setup.runtime.start(container_id)
    os.rename(request.log_path, request.log_path + ".1")  # the kubelet's rotation
    send = ctl.send

    def swap_then_send(bundle: Path, kind: int, height: int = 0, width: int = 0) -> None:
        tmp = request.log_path + ".tmp"  # pycrio made it a plain file a moment ago
        os.unlink(tmp)
        os.symlink(setup.victim, tmp)
        send(bundle, kind, height, width)

    monkeypatch.setattr(ctl, "send", swap_then_send)
    with pytest.raises(InvalidArgument, match=r"log_path: .* before conmon opened it at reopen"):
        monitor.reopen_log(container_id)
    assert not conmon_of(container_id)
    assert stat.S_ISLNK(os.lstat(request.log_path).st_mode)

"""What a node reboot takes from the host, done to one test daemon's part of it.

A reboot ends every process, empties every tmpfs (the run dir, with the OCI runtime's state root in it),
drops every mount, network namespace, link and iptables rule, and starts with an empty cgroup tree. What is
on disk stays: the daemon's state dir and image storage, host-local's allocations in its data dir, the
kubelet's log dirs. `simulate_reboot` does exactly that to the processes, mounts, links, rules and cgroups
of one test daemon and its private network, so that the next start meets what it would meet after a reboot.
The host cannot really reboot under a test: `pretend_an_earlier_boot` makes the records say they were
written in another boot, and `Decoys` stand for the unrelated processes of the new boot that reuse the
recorded pids.
"""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import uuid
from pathlib import Path

from adapters.host.facts import read_boot_id
from adapters.host.run_dir_boot import BOOT_FILE
from adapters.namespaces.linux import process_start_time
from bench.cleanup import kill_cgroup_tree, unmount_under
from tests.e2e.daemon import Daemon
from tests.pod_host import HostTestNetwork, cleanup


def simulate_reboot(
    daemon: Daemon, cgroup_parent: str, network: HostTestNetwork, run_dir_on_disk: bool = False
) -> None:
    """kill -9 the daemon and everything it started, then take away what a reboot takes. With
    `run_dir_on_disk` the run dir's files stay (a run dir that is no tmpfs), its mounts still go."""
    run_dir = daemon.workdir / "run"
    daemon.stop(signal.SIGKILL)
    # conmon first: a conmon that outlives its container would write an exit file (there is none after a
    # power cut); then the pods' infra processes and containers, all in the test's cgroup tree.
    for pid_file in run_dir.glob("conmon/*/conmon.pid"):
        _kill_named(int(pid_file.read_text().strip() or 0), b"conmon")
    for pid_file in run_dir.glob("pods/*/infra/pid"):
        pid, start = (int(part) for part in pid_file.read_text().split())
        if process_start_time(pid) == start:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    kill_cgroup_tree(cgroup_parent)  # the processes, then the directories: a new boot has none
    unmount_under(run_dir)  # namespace pins, shm
    if not run_dir_on_disk:
        shutil.rmtree(run_dir, ignore_errors=True)  # a tmpfs: with conmon's files, bundles, runc's state
    unmount_under(daemon.workdir / "root")  # the containers' overlay mounts; their dirs stay on disk
    cleanup(network, keep_ipam=True)  # links and rules go with the reboot; host-local's files stay


def _kill_named(pid: int, name: bytes) -> None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return
    if pid > 0 and stat[stat.find(b"(") + 1 : stat.rfind(b")")] == name:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


class Decoys:
    """Processes of "the new boot" that happen to have the pids the earlier boot recorded: a plain one for
    infra processes, one named conmon for conmon's pid files. None of them may be signalled."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        conmon = directory / "conmon"
        shutil.copy(shutil.which("sleep") or "/bin/sleep", conmon)
        self.plain = subprocess.Popen(["sleep", "3600"])
        self.conmon = subprocess.Popen([str(conmon), "3600"])

    @staticmethod
    def record(process: subprocess.Popen[bytes]) -> dict[str, int]:
        start = process_start_time(process.pid)
        assert start is not None
        return {"pid": process.pid, "start_time": start}

    def alive(self) -> bool:
        return self.plain.poll() is None and self.conmon.poll() is None

    def stop(self) -> None:
        for process in (self.plain, self.conmon):
            process.kill()
            process.wait()


def pretend_an_earlier_boot(daemon: Daemon, decoys: Decoys) -> str:
    """Make the daemon's pod and container records (and its run dir's boot file, where the run dir kept its
    files) say they were written in another boot, and point every pid they recorded at a decoy; returns
    that boot id. Each record must carry this boot's id, as the daemon wrote it."""
    current = read_boot_id()
    earlier = str(uuid.uuid4())
    state = daemon.workdir / "root" / "state"
    for kind in ("sandboxes", "containers"):
        for record in (state / kind).glob("*.json"):
            document = json.loads(record.read_text())
            assert document["boot_id"] == current, record
            document["boot_id"] = earlier
            if document.get("infra"):
                document["infra"] |= Decoys.record(decoys.plain)
            if document.get("pid"):
                document["pid"] = decoys.plain.pid
            record.write_text(json.dumps(document))
    run_dir = daemon.workdir / "run"
    if (run_dir / BOOT_FILE).exists():
        assert (run_dir / BOOT_FILE).read_text().strip() == current
        (run_dir / BOOT_FILE).write_text(earlier + "\n")
    plain, conmon = Decoys.record(decoys.plain), Decoys.record(decoys.conmon)
    for pid_file in run_dir.glob("pods/*/infra/pid"):
        pid_file.write_text(f"{plain['pid']} {plain['start_time']}")
    for pid_file in run_dir.glob("conmon/*/conmon.pid"):
        pid_file.write_text(str(conmon["pid"]))
    return earlier

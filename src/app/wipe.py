"""`pycrio wipe`: remove all of pycrio's state after an unclean shutdown (cri-o's `crio wipe`).

After a crash or a power cut the state can disagree with the host (mounts gone, containers half made).
Wiping is the blunt recovery: every container the runtimes still know is deleted, every pod's infra
process killed, every mount under the state and runtime dirs detached, then both dirs removed. It refuses
while a daemon serves the socket or holds the dirs' lock (adapters/host/state_lock.py), and does nothing
without `--yes`. A container is pycrio's when its bundle lies in pycrio's run dir: a runc root shared with
another runtime (a configured `runtime.runtimes.NAME.root`) keeps that runtime's containers.

CNI DEL is not run (the network namespaces it needs are what is being torn down): IP addresses the
host-local IPAM plugin handed out stay allocated under /var/lib/cni/networks until removed by hand.
"""

import os
import shutil
import signal
import sys
from pathlib import Path

from adapters.host.state_lock import StateDirInUse, StateDirLock
from adapters.host.unix_sockets import SocketInUse, prepare_socket_path
from adapters.namespaces import linux
from adapters.runc.runtime import RuncRuntime
from app.config import Config
from domain.errors import PycrioError


def wipe(config: Config, *, confirmed: bool) -> int:
    dirs = [Path(config.runtime.root), Path(config.runtime.run_dir)]
    try:
        prepare_socket_path(config.socket_path)
    except SocketInUse as err:
        print(f"pycrio wipe: refused: {err}", file=sys.stderr)
        return 1
    try:  # a daemon on another socket but these dirs still holds them
        StateDirLock(*(d for d in dirs if d.is_dir())).acquire()
    except StateDirInUse as err:
        print(f"pycrio wipe: refused: {err}", file=sys.stderr)
        return 1
    if not confirmed:
        print(
            "pycrio wipe: would delete every container and pod and remove "
            + ", ".join(str(d) for d in dirs)
            + "; run again with --yes to do it",
            file=sys.stderr,
        )
        return 1
    for name, handler in sorted(config.runtime.runtimes.items()):
        root = Path(handler.root or Path(config.runtime.run_dir) / name)
        runtime = RuncRuntime(handler.path, str(root), timeout=config.runtime.subprocess_timeout)
        _delete_containers(runtime, root, Path(config.runtime.run_dir))
    _kill_infra_processes(Path(config.runtime.run_dir) / "pods")
    for directory in dirs:
        _unmount_under(directory)
        shutil.rmtree(directory, ignore_errors=True)
        print(f"pycrio wipe: removed {directory}")
    return 0


def _delete_containers(runtime: RuncRuntime, root: Path, run_dir: Path) -> None:
    """Every container of pycrio's in the runtime's state dir (one subdir per container), killed and
    deleted; one whose bundle is elsewhere belongs to another runtime sharing the dir and is left."""
    if not root.is_dir():
        return
    ours = run_dir.resolve()
    for entry in sorted(root.iterdir()):
        if entry.is_dir():
            try:
                state = runtime.state(entry.name)
                if state is not None and not Path(state.bundle).resolve().is_relative_to(ours):
                    print(
                        f"pycrio wipe: left container {entry.name}: its bundle {state.bundle} is not pycrio's"
                    )
                    continue
                runtime.delete(entry.name, force=True)
                print(f"pycrio wipe: deleted container {entry.name}")
            except (PycrioError, OSError) as err:  # best effort: the rest still goes
                print(f"pycrio wipe: container {entry.name}: {err}", file=sys.stderr)


def _kill_infra_processes(pods: Path) -> None:
    """Each pod's infra process, from its "<pid> <start time>" record, if that process still runs."""
    for record in sorted(pods.glob("*/infra/pid")):
        try:
            pid, start_time = (int(part) for part in record.read_text().split())
        except (OSError, ValueError):
            continue
        if linux.process_start_time(pid) == start_time:
            os.kill(pid, signal.SIGKILL)
            print(f"pycrio wipe: killed the infra process {pid} of pod {record.parents[1].name}")


def _unmount_under(directory: Path) -> None:
    """Detach every mount at or below `directory`, deepest first."""
    prefix = str(directory.resolve()) if directory.exists() else str(directory)
    targets = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        target = line.split()[4].replace("\\040", " ")
        if target == prefix or target.startswith(prefix + "/"):
            targets.append(target)
    for target in sorted(targets, key=len, reverse=True):
        try:
            linux.umount2(target, linux.MNT_DETACH)
        except OSError as err:
            print(f"pycrio wipe: unmount {target}: {err}", file=sys.stderr)

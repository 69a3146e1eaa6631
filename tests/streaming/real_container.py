"""Real containers for the exec/attach contract: a busybox rootfs, runc, and conmon holding the stdio.

Each container is created by the real adapters (`ConmonMonitor.create`, then `RuncRuntime.start`), so
`RealContainerStreams` can exec through `RuncRuntime.exec` and attach through `ConmonMonitor.attach` as the
containers service does. Names start with `pcstream-`; everything is removed on stop.
"""

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from adapters.conmon.monitor import ConmonMonitor
from adapters.runc.runtime import RuncRuntime
from domain.errors import NotFound, PycrioError
from ports.container_monitor import MonitoredCreate
from ports.streaming import ProcessStreams

RUNC = "/usr/sbin/runc"
CONMON = "/usr/bin/conmon"
APPLETS = ["sh", "cat", "echo", "sleep", "stty", "wc", "head", "true", "tr", "hostname"]


def build_rootfs(rootfs: Path) -> None:
    """busybox plus the shared libraries it links (Debian's `busybox` is dynamic, `busybox-static` is not,
    and either may be the one installed), and applet links."""
    busybox = Path(shutil.which("busybox") or "/bin/busybox").resolve()
    (rootfs / "bin").mkdir(parents=True)
    shutil.copy2(busybox, rootfs / "bin" / "busybox")
    ldd = subprocess.run(["ldd", str(busybox)], capture_output=True, text=True)
    libraries = ldd.stdout if ldd.returncode == 0 else ""  # "not a dynamic executable"
    for line in libraries.splitlines():
        path = next((p for p in line.split() if p.startswith("/")), None)
        if path:
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(Path(path).resolve(), target)
    for applet in APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")
    for directory in ("proc", "dev", "sys", "tmp"):
        (rootfs / directory).mkdir(exist_ok=True)


class RealContainer:
    def __init__(
        self, workdir: Path, rootfs: Path, args: list[str], stdin: bool, stdin_once: bool, tty: bool
    ):
        self.id = f"pcstream-{secrets.token_hex(6)}"
        self.bundle = workdir / self.id
        self.runtime = RuncRuntime(RUNC, str(workdir / "runc"), timeout=60, scratch_dir=workdir / "scratch")
        self.monitor = ConmonMonitor(
            CONMON, workdir / "conmon", exits_dir=workdir / "exits", sockets_dir=workdir / "sockets"
        )
        self.args, self.stdin, self.stdin_once, self.tty = args, stdin, stdin_once, tty
        self.bundle.mkdir(parents=True)
        subprocess.run([RUNC, "spec", "--bundle", str(self.bundle)], check=True)
        spec = json.loads((self.bundle / "config.json").read_text())
        spec["root"] = {"path": str(rootfs), "readonly": True}
        spec["process"]["args"] = args
        spec["process"]["terminal"] = tty
        spec["linux"]["cgroupsPath"] = f"/{self.id}"
        spec["hostname"] = "pcstream"
        (self.bundle / "config.json").write_text(json.dumps(spec))
        self.process = spec["process"]

    def start(self) -> "RealContainer":
        request = MonitoredCreate(
            container_id=self.id,
            name=self.id,
            bundle=self.bundle,
            log_path=str(self.bundle / "ctr.log"),
            runtime_binary=RUNC,
            runtime_root=self.runtime.root,
            stdin=self.stdin,
            stdin_once=self.stdin_once,
            tty=self.tty,
        )
        self.monitor.create(request, timeout=60)
        self.runtime.start(self.id)
        return self

    def state(self) -> str:
        found = self.runtime.state(self.id)
        return found.status if found is not None else "gone"

    def stop(self) -> None:
        with contextlib.suppress(PycrioError):
            self.runtime.kill(self.id, 9, all_processes=True)
        for _ in range(200):
            if self.state() in ("stopped", "gone"):
                break
            subprocess.run(["sleep", "0.05"])
        with contextlib.suppress(PycrioError):
            self.runtime.delete(self.id, force=True)
        with contextlib.suppress(ProcessLookupError, ValueError, OSError):
            os.kill(int((self.bundle.parent / "conmon" / self.id / "conmon.pid").read_text()), 9)
        self.monitor.cleanup(self.id)
        shutil.rmtree(self.bundle, ignore_errors=True)


class RealContainerStreams:
    """ContainerStreams as the containers service provides it: exec through the runtime, attach through
    the monitor."""

    def __init__(self) -> None:
        self.containers: dict[str, RealContainer] = {}

    def _get(self, container_id: str) -> RealContainer:
        try:
            return self.containers[container_id]
        except KeyError:
            raise NotFound(container_id) from None

    def exec(self, container_id: str, cmd: list[str], streams: ProcessStreams) -> int:
        container = self._get(container_id)
        process = {**container.process, "args": list(cmd), "terminal": streams.tty}
        return container.runtime.exec(container.id, process, streams)

    def attach(self, container_id: str, streams: ProcessStreams) -> None:
        container = self._get(container_id)
        container.monitor.attach(container.id, streams, container.stdin, container.stdin_once, container.tty)


def processes_matching(marker: str) -> list[str]:
    """Processes on the host (containers' included) whose command line holds `marker`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline, open(f"/proc/{pid}/stat") as stat:
                command = cmdline.read()
                if marker.encode() in command:
                    fields = stat.read().rsplit(")", 1)[1].split()
                    found.append(f"{pid} state={fields[0]} ppid={fields[1]} {command!r}")
        except OSError:
            continue
    return found

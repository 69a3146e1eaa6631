"""Real containers for the exec/attach contract: a busybox rootfs, runc, and conmon holding the stdio.

This is test support that mirrors how the runtime starts a container under conmon (start and sync pipes,
attach socket, ctl fifo), so the OCI exec/attach adapter is tested against the real components before the
containers service exists in this branch. Names start with `pcstream-`; everything is removed on stop.
"""

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from pathlib import Path

from ports.streaming_targets import ContainerIo

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
        self.runtime_root = str(workdir / "runc")
        self.sockets = workdir / "sockets"
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

    def io(self) -> ContainerIo:
        return ContainerIo(
            self.id,
            RUNC,
            self.runtime_root,
            str(self.bundle),
            str(self.sockets / self.id / "attach"),
            self.stdin,
            self.stdin_once,
            self.tty,
        )

    def start(self) -> "RealContainer":
        self.sockets.mkdir(parents=True, exist_ok=True)
        args = [
            CONMON, "-c", self.id, "-u", self.id, "-n", self.id, "-r", RUNC,
            "--runtime-arg", f"--root={self.runtime_root}", "-b", str(self.bundle),
            "-p", str(self.bundle / "pidfile"), "-P", str(self.bundle / "conmon.pid"),
            "--persist-dir", str(self.bundle), "--exit-dir", str(self.bundle),
            "--socket-dir-path", str(self.sockets), "-l", f"k8s-file:{self.bundle / 'ctr.log'}",
            "--log-level", "error",
        ]  # fmt: skip
        if self.tty:
            args.append("-t")
        elif self.stdin:
            args.append("-i")
            if not self.stdin_once:
                args.append("--leave-stdin-open")
        sync_r, sync_w = os.pipe()
        start_r, start_w = os.pipe()
        env = {"PATH": os.environ["PATH"], "_OCI_SYNCPIPE": str(sync_w), "_OCI_STARTPIPE": str(start_r)}
        conmon = subprocess.Popen(
            args, cwd=self.bundle, env=env, pass_fds=(sync_w, start_r), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        os.close(sync_w)
        os.close(start_r)
        os.write(start_w, b"\0")
        os.close(start_w)
        conmon.wait(60)  # its first process exits once the monitor has forked away
        with os.fdopen(sync_r, "rb") as sync:
            message = json.loads(sync.readline() or b"{}")
        if int(message.get("pid", -1)) <= 0:
            raise RuntimeError(f"conmon could not create {self.id}: {message}")
        subprocess.run([RUNC, "--root", self.runtime_root, "start", self.id], check=True, capture_output=True)
        return self

    def state(self) -> str:
        result = subprocess.run(
            [RUNC, "--root", self.runtime_root, "state", self.id], capture_output=True, text=True
        )
        return str(json.loads(result.stdout)["status"]) if result.returncode == 0 else "gone"

    def stop(self) -> None:
        subprocess.run([RUNC, "--root", self.runtime_root, "kill", self.id, "KILL"], capture_output=True)
        for _ in range(200):
            if self.state() in ("stopped", "gone"):
                break
            subprocess.run(["sleep", "0.05"])
        subprocess.run([RUNC, "--root", self.runtime_root, "delete", "--force", self.id], capture_output=True)
        pid_file = self.bundle / "conmon.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), 9)
        shutil.rmtree(self.bundle, ignore_errors=True)
        (self.sockets / self.id).unlink(missing_ok=True)


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

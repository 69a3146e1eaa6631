"""Real v1 cgroups for tests, under the `pycrio-test-monitoring` parent of each controller, always removed."""

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "pycrio-test-monitoring"
CONTROLLERS = ("cpuacct", "cpu", "memory", "pids")

# Waits for a line on stdin, then burns a fixed amount of CPU and keeps `mib` MiB of touched memory.
_WORKER = """
import sys
held = []
for line in sys.stdin:
    mib = int(line)
    total = 0
    for i in range(2_000_000):
        total += i * i
    held.append(bytearray(b"\\x01") * (mib * 1024 * 1024))
    print(total % 7, flush=True)
"""


@contextlib.contextmanager
def scratch_cgroup() -> Iterator[str]:
    """A fresh cgroup in every controller; yields its path from the hierarchy root."""
    name = f"/{PARENT}/live-{uuid.uuid4().hex[:8]}"
    made: list[Path] = []
    try:
        for controller in CONTROLLERS:
            path = ROOT / controller / name.lstrip("/")
            path.mkdir(parents=True, exist_ok=True)
            made.append(path)
        yield name
    finally:
        for path in reversed(made):
            _rmdir(path)
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # the shared parent, when no other test uses it


class Worker:
    """A process inside a cgroup that does work on request (no sleeps, no timing)."""

    def __init__(self, cgroup: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        for controller in CONTROLLERS:
            (ROOT / controller / cgroup.lstrip("/") / "cgroup.procs").write_text(str(self.process.pid))

    def work(self, mib: int) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{mib}\n")
        self.process.stdin.flush()
        if not self.process.stdout.readline():
            raise RuntimeError("the worker died")

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


def _rmdir(path: Path) -> None:
    for _ in range(50):
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.05)  # tasks still leaving the cgroup
    os.rmdir(path)

"""Start and stop bench/floor_server.py, the CRI server with nothing of pycrio in it, for one measurement.

pycrio's turn measures it next to the daemon (its idle RSS, and the list calls answered with pycrio's own
bytes), so each round shows how far a row is from what grpcio and pycrio's required packages cost alone.
"""

import contextlib
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from adapters.process.runner import spawn
from bench.cri import CriConnection, connect

BENCH_ROOT = Path(__file__).resolve().parents[1]  # the floor server runs from this repository's bench/
START_SECONDS = 30.0


@dataclass
class Floor:
    cri: CriConnection
    pid: int


@contextlib.contextmanager
def floor_server(
    python: str, source: Path, parent: Path, answers: Mapping[str, bytes] | None = None
) -> Iterator[Floor]:
    """A running floor server answering the list methods with `answers` (method name -> response bytes); its
    socket and answers live in a directory under `parent`, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="floor-", dir=parent) as scratch:
        workdir = Path(scratch)
        for method, data in (answers or {}).items():
            (workdir / method).write_bytes(data)
        socket = workdir / "floor.sock"
        env = {
            "PYTHONPATH": f"{source}:{BENCH_ROOT}",
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        process = spawn(
            [python, "-m", "bench.floor_server", str(socket), str(workdir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            first = process.stdout.readline().decode(errors="replace").strip()
            if first != "ready":
                rest = (
                    process.stdout.read(3000).decode(errors="replace") if process.poll() is not None else ""
                )
                raise RuntimeError(f"the floor server did not start: {first} {rest}".strip())
            cri = connect(f"unix://{socket}", wait=START_SECONDS)
            try:
                yield Floor(cri, process.pid)
            finally:
                cri.close()
        finally:
            process.kill()
            process.wait()

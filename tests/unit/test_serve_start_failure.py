"""A background service that cannot start (another runtime began serving the NRI socket after the start-up
check) ends the daemon with its message and exit code 1: the services started before it are stopped and the
CRI server with them, instead of a traceback with the server still serving."""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# In a child process: serve() makes its process a subreaper and reaps orphans, which a test run must not.
CHILD = textwrap.dedent(
    """
    from adapters.host.unix_sockets import SocketInUse
    from app.main import serve

    events = []

    class Part:
        def __init__(self, name, fail=False):
            self.name, self.fail = name, fail

        def start(self):
            if self.fail:
                raise SocketInUse("/run/x/nri.sock is in use by a running process")
            events.append(self.name + " started")

        def stop(self, grace=None):
            events.append(self.name + " stopped")

        def wait(self):
            events.append("served")

    class Node:
        def streaming_server(self):
            return Part("streaming")

        def server(self):
            return Part("server")

        def background_services(self):
            return [Part("exits"), Part("nri", fail=True), Part("events")]

    print(serve(Node(), 1.0), events)
    """
)


def test_a_background_service_that_cannot_start_stops_what_started_and_exits_1() -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=120, cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'src'}", "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == (
        "1 ['streaming started', 'server started', 'exits started', 'exits stopped', 'server stopped', "
        "'streaming stopped']"
    )
    assert "pycrio: /run/x/nri.sock is in use by a running process" in child.stderr

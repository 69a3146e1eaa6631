"""The orphan reaper: an orphan the daemon adopted is reaped once it exits, and nothing is scanned while no
child exits (an idle daemon does no periodic work). Runs in a fresh interpreter: it becomes a subreaper and
installs a SIGCHLD handler, which the test process should not."""

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"

SCRIPT = """
import os, subprocess, threading, time
from unittest import mock
from adapters.process import runner
from adapters.process.subreaper import become_subreaper

scans = []
real = runner.reap_orphans
def counting():
    found = real()
    scans.append(found)
    return found

def eventually(check):
    deadline = time.monotonic() + 30
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.01)

def state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return None

assert become_subreaper()
with mock.patch.object(runner, "reap_orphans", counting):
    reaper = runner.OrphanReaper(gap=0.05)
    reaper.start()
    eventually(lambda: len(scans) == 1)  # the scan at start
    threading.Event().wait(1.0)
    assert len(scans) == 1, f"scanned without a child exit: {scans}"
    # sh leaves `sleep` behind: this process adopts it, and must reap it when it exits.
    parent = runner.spawn(["sh", "-c", "sleep 0.5 & echo $!"], stdout=subprocess.PIPE)
    orphan = int(parent.stdout.read())
    assert runner.wait(parent, 10) == 0
    runner.release(parent)
    eventually(lambda: state(orphan) is None)
    assert any(orphan in found for found in scans)
    reaper.stop()
print("ok")
"""


def test_an_adopted_orphan_is_reaped_on_its_exit_and_idle_means_no_scan() -> None:
    env = dict(os.environ, PYTHONPATH=str(SRC))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120, env=env
    )
    assert result.returncode == 0 and result.stdout.splitlines()[-1:] == ["ok"], result.stdout + result.stderr

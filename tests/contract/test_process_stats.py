"""The ProcessStatsReader contract: the fake, and /proc with a real process holding sockets and threads."""

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from adapters.procfs.process_stats import ProcfsProcessStats
from ports.process_stats import ProcessCounts, ProcessStatsReader
from tests.fakes.process_stats import FakeProcessStats

# Opens two sockets, starts three extra threads, then waits to be killed.
_HOLDER = """
import socket, sys, threading
held = [socket.socket(), socket.socket()]
stop = threading.Event()
for _ in range(3):
    threading.Thread(target=stop.wait, daemon=True).start()
print("ready", flush=True)
sys.stdin.read()
"""


@dataclass
class Subject:
    reader: ProcessStatsReader
    pid: int


@pytest.fixture(scope="module")
def holder() -> Iterator[int]:
    process = subprocess.Popen([sys.executable, "-c", _HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    yield process.pid
    process.kill()
    process.wait()


@pytest.fixture(params=["fake", "procfs"])
def subject(request: pytest.FixtureRequest) -> Subject:
    if request.param == "procfs":
        return Subject(ProcfsProcessStats(), request.getfixturevalue("holder"))
    fake = FakeProcessStats()
    fake.processes[4242] = ProcessCounts(file_descriptors=8, sockets=2, threads=4)
    return Subject(fake, 4242)


def test_a_process_with_sockets_and_threads(subject: Subject) -> None:
    counts = subject.reader.read([subject.pid])
    assert counts.sockets == 2
    assert counts.threads == 4  # the main thread and three more
    assert counts.file_descriptors >= counts.sockets + 3  # stdio too


def test_gone_processes_are_left_out(subject: Subject) -> None:
    alone = subject.reader.read([subject.pid])
    assert subject.reader.read([subject.pid, 999_999_999]) == alone
    assert subject.reader.read([]) == ProcessCounts(0, 0, 0)

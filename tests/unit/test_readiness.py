"""Waits on descriptors above 1024 work: select() refuses them, and a busy daemon gets there."""

import os
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.conmon.monitor import _read_json
from adapters.readiness import Wakeup, WatchThread, readable, wait_readable
from adapters.streaming.transport import Transport

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def high_fds() -> Iterator[None]:
    """Make every new descriptor of this process land above 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2048:
        pytest.fail(f"the hard descriptor limit {hard} is too low for this test")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    fillers = []
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        while (fd := os.dup(null)) <= 1100:
            fillers.append(fd)
        os.close(fd)
        yield
    finally:
        for fd in [null, *fillers]:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.usefixtures("high_fds")
def test_a_streaming_connection_above_fd_1024_reads() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert ours.fileno() > 1024
        theirs.sendall(b"GET /exec/x HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Transport(ours, idle_timeout=5.0).read_request().path == "/exec/x"


@pytest.mark.usefixtures("high_fds")
def test_conmons_sync_pipe_above_fd_1024_reads() -> None:
    read_end, write_end = os.pipe()
    try:
        assert read_end > 1024
        os.write(write_end, b'{"pid": 7}\n')
        assert _read_json(read_end, 5.0, "test") == {"pid": 7}
        assert not wait_readable(read_end, 0.0)
    finally:
        os.close(read_end)
        os.close(write_end)


@pytest.mark.usefixtures("high_fds")
def test_a_wait_without_timeout_ends_at_data_or_at_the_wakeup() -> None:
    read_end, write_end = os.pipe()
    wakeup = Wakeup()
    try:
        assert readable([read_end, wakeup], 0.0) == set()
        os.write(write_end, b"x")
        assert readable([read_end, wakeup]) == {read_end}
        os.read(read_end, 1)
        done: list[set[int]] = []
        waiter = threading.Thread(target=lambda: done.append(readable([read_end, wakeup])))
        waiter.start()
        wakeup.set()
        waiter.join(30)
        assert done == [{wakeup.fileno()}]
    finally:
        wakeup.close()
        os.close(read_end)
        os.close(write_end)


def test_nothing_in_pycrio_calls_select() -> None:
    callers = [str(p) for p in SRC.rglob("*.py") if "select.select(" in p.read_text()]
    assert callers == []


def test_a_watch_thread_stuck_past_its_join_keeps_its_wakeup_open() -> None:
    """Closing a descriptor a live thread polls would let it poll whatever file reuses the number."""
    release = threading.Event()
    seen: list[int] = []

    def loop(stop: Wakeup) -> None:
        seen.append(stop.fileno())
        release.wait(30)  # a callback stuck past the join

    watch = WatchThread("test-watch", loop, join_timeout=0.0)
    watch.start()
    try:
        assert not watch.stop()
        assert watch.running
        os.fstat(seen[0])  # still open
    finally:
        release.set()
    for _ in range(3000):  # the loop returns soon after its release; each join waits 0 s
        if watch.stop():
            break
        time.sleep(0.01)
    assert not watch.running

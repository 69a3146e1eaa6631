"""The ContainerStreams contract (exec and attach): the local-process fake, and (root) real runc containers
whose stdio conmon holds, through `RuncRuntime.exec` and `ConmonMonitor.attach` as the containers service
uses them."""

import contextlib
import dataclasses
import os
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.streaming.buffers import InputBuffer
from ports.streaming import ContainerStreams, ProcessStreams, TerminalSize
from tests.fakes.streaming import LocalProcessStreams
from tests.streaming.real_container import (
    RealContainer,
    RealContainerStreams,
    build_rootfs,
    processes_matching,
)
from tests.streaming_client import wait_until


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Condition()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.data += data
            self.lock.notify_all()

    def close(self) -> None:
        pass

    def wait_for(self, wanted: bytes) -> bytes:
        with self.lock:
            assert self.lock.wait_for(lambda: wanted in self.data, 30), bytes(self.data)
            return bytes(self.data)


StartContainer = Callable[[list[str], bool, bool, bool], str]


class Subject:
    def __init__(self, backend: ContainerStreams, start: StartContainer) -> None:
        self.backend = backend
        self.start = start
        self.exec_target = start(["sleep", "100000"], False, False, False)


@pytest.fixture(scope="module")
def rootfs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pcstream-rootfs-") as work:
        build_rootfs(Path(work) / "rootfs")
        yield Path(work) / "rootfs"


@pytest.fixture(params=["fake", pytest.param("oci", marks=pytest.mark.root)])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Subject]:
    if request.param == "fake":
        fake = LocalProcessStreams()

        def start_local(args: list[str], stdin: bool, stdin_once: bool, tty: bool) -> str:
            container_id = f"c-{secrets.token_hex(4)}"
            fake.start_container(container_id, args, tty=tty, stdin=stdin, stdin_once=stdin_once)
            return container_id

        yield Subject(fake, start_local)
        fake.stop_all()
        return
    request.getfixturevalue("orphan_reaper")  # a tty exec's process is waited for as an adopted child
    rootfs = request.getfixturevalue("rootfs")
    backend = RealContainerStreams()

    def start_real(args: list[str], stdin: bool, stdin_once: bool, tty: bool) -> str:
        container = RealContainer(tmp_path, rootfs, args, stdin, stdin_once, tty)
        backend.containers[container.id] = container
        container.start()
        return container.id

    try:
        yield Subject(backend, start_real)
    finally:
        for container in backend.containers.values():
            container.stop()


def _streams(
    stdin: InputBuffer | None = None, tty: bool = False, resize: list[TerminalSize] | None = None
) -> tuple[ProcessStreams, Sink, Sink]:
    out, err = Sink(), Sink()
    streams = ProcessStreams(
        stdin=stdin,
        stdout=out,
        stderr=None if tty else err,
        tty=tty,
        resize=iter(resize) if resize is not None else None,
        cancelled=threading.Event(),
    )
    return streams, out, err


def test_exec_separates_stdout_and_stderr_and_returns_the_exit_code(subject: Subject) -> None:
    streams, out, err = _streams()
    code = subject.backend.exec(subject.exec_target, ["sh", "-c", "echo o; echo e >&2; exit 9"], streams)
    assert (code, bytes(out.data), bytes(err.data)) == (9, b"o\n", b"e\n")


def test_exec_reads_stdin_to_its_end(subject: Subject) -> None:
    stdin = InputBuffer()
    stdin.feed(b"abc\n" * 10000)
    stdin.end()
    streams, out, _ = _streams(stdin)
    assert subject.backend.exec(subject.exec_target, ["wc", "-l"], streams) == 0
    assert bytes(out.data).strip() == b"10000"


def test_exec_tty_has_one_stream_and_the_size_asked_for(subject: Subject) -> None:
    streams, out, _ = _streams(tty=True, resize=[TerminalSize(width=77, height=22)])
    script = 'until [ "$(stty size 2>/dev/null)" = "22 77" ]; do sleep 0.01; done; echo e >&2'
    assert subject.backend.exec(subject.exec_target, ["sh", "-c", script], streams) == 0
    assert bytes(out.data).endswith(b"e\r\n")  # stderr came out of the terminal, after the resize took


def test_exec_tty_follows_a_resize_after_the_start(subject: Subject) -> None:
    started = threading.Event()

    def sizes() -> Iterator[TerminalSize]:
        yield TerminalSize(width=80, height=24)
        started.wait(30)
        yield TerminalSize(width=99, height=33)

    streams, out, _ = _streams(tty=True)
    streams = dataclasses.replace(streams, resize=sizes())
    script = 'echo up; until [ "$(stty size)" = "33 99" ]; do sleep 0.05; done; echo resized'
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(subject.backend.exec(subject.exec_target, ["sh", "-c", script], streams))
    )
    worker.start()
    out.wait_for(b"up")
    started.set()
    worker.join(60)
    assert result == [0]
    assert bytes(out.data).endswith(b"resized\r\n")


def test_exec_tty_runs_no_python_in_a_forked_child(subject: Subject, tmp_path: Path) -> None:
    # A Popen preexec_fn makes the forked child run the interpreter's at-fork handlers, gRPC's among them;
    # in the threaded daemon that child could die of SIGABRT before exec (critest saw exit code -6).
    marker = tmp_path / "forked-child-ran-python"

    def mark() -> None:
        with contextlib.suppress(OSError):
            marker.touch()

    os.register_at_fork(after_in_child=mark)
    streams, out, _ = _streams(tty=True, resize=[TerminalSize(width=80, height=24)])
    assert subject.backend.exec(subject.exec_target, ["echo", "hello"], streams) == 0
    assert bytes(out.data) == b"hello\r\n"
    assert not marker.exists()


def test_exec_cancel_kills_the_process(subject: Subject) -> None:
    marker = f"{secrets.randbelow(10**6) + 10**6}"
    streams, out, _ = _streams()
    result: list[int] = []

    def run() -> None:
        result.append(
            subject.backend.exec(subject.exec_target, ["sh", "-c", f"echo up; sleep {marker}"], streams)
        )

    worker = threading.Thread(target=run)
    worker.start()
    out.wait_for(b"up")
    streams.cancelled.set()  # type: ignore[attr-defined]
    worker.join()
    assert result == [-1]
    gone = wait_until(lambda: not processes_matching(marker))
    assert gone, f"sleep {marker} survived the cancelled exec: {processes_matching(marker)}"


def test_attach_non_tty_separates_streams_and_stdin_once_closes_stdin(subject: Subject) -> None:
    script = 'while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo bye'
    container_id = subject.start(["sh", "-c", script], True, True, False)
    stdin = InputBuffer()
    streams, out, err = _streams(stdin)
    worker = threading.Thread(target=subject.backend.attach, args=(container_id, streams))
    worker.start()
    # Output written before the attach joined is not replayed: ask until an answer shows.
    for attempt in range(200):
        stdin.feed(b"%d\n" % attempt)
        with out.lock:
            if out.lock.wait_for(lambda: b"out:" in out.data, 0.1):
                break
    stdin.end()  # the client's stdin ends: the container's stdin is closed, the loop ends, it exits
    worker.join()
    assert bytes(out.data).endswith(b"bye\n")
    assert b"err:" in err.data and b"out:" not in err.data


def test_attach_tty_resizes_the_container_terminal(subject: Subject) -> None:
    container_id = subject.start(["sh", "-c", "while read l; do stty size; done"], True, False, True)
    stdin = InputBuffer()
    sizes = InputBuffer()  # resize events fed as the test goes

    def resize_events() -> Iterator[TerminalSize]:
        while sizes.read(1):
            yield TerminalSize(width=61, height=19)

    streams = ProcessStreams(stdin, Sink(), None, True, resize_events(), threading.Event())
    out = streams.stdout
    assert isinstance(out, Sink)
    worker = threading.Thread(target=subject.backend.attach, args=(container_id, streams))
    worker.start()
    sizes.feed(b"x")
    for _ in range(200):
        stdin.feed(b"go\n")
        with out.lock:
            if out.lock.wait_for(lambda: b"19 61" in out.data, 0.1):
                break
    assert b"19 61" in out.data
    streams.cancelled.set()  # type: ignore[attr-defined]
    sizes.end()
    stdin.end()
    worker.join()

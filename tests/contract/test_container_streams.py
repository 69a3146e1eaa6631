"""The ContainerStreams contract (exec and attach), run against the local-process fake.

The conmon-backed adapter joins the parametrization when the containers branch provides it.
"""

import threading
from collections.abc import Iterator

import pytest

from adapters.streaming.buffers import InputBuffer
from ports.streaming import ContainerStreams, ProcessStreams, TerminalSize
from tests.fakes.streaming import LocalProcessStreams


class Sink:
    def __init__(self) -> None:
        self.data = bytearray()
        self.lock = threading.Lock()

    def write(self, data: bytes) -> None:
        with self.lock:
            self.data += data

    def close(self) -> None:
        pass


class Subject:
    def __init__(self, backend: ContainerStreams, exec_target: str, start: object) -> None:
        self.backend = backend
        self.exec_target = exec_target
        self.start = start


@pytest.fixture(params=["fake"])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    fake = LocalProcessStreams()
    fake.start_container("target", ["sleep", "100000"])
    yield Subject(fake, "target", fake.start_container)
    fake.stop_all()


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
    stdin.feed(b"abc\n")
    stdin.end()
    streams, out, _ = _streams(stdin)
    assert subject.backend.exec(subject.exec_target, ["cat"], streams) == 0
    assert bytes(out.data) == b"abc\n"


def test_exec_tty_has_one_stream_and_the_size_asked_for(subject: Subject) -> None:
    streams, out, _ = _streams(tty=True, resize=[TerminalSize(width=77, height=22)])
    code = subject.backend.exec(
        subject.exec_target,
        ["sh", "-c", 'until [ "$(stty size)" = "22 77" ]; do sleep 0.01; done; echo e >&2'],
        streams,
    )
    assert code == 0
    assert bytes(out.data) == b"e\r\n"  # stderr came out of the terminal, after the resize took


def test_exec_cancel_kills_the_process(subject: Subject) -> None:
    streams, out, _ = _streams()
    result: list[int] = []
    worker = threading.Thread(
        target=lambda: result.append(
            subject.backend.exec(subject.exec_target, ["sh", "-c", "echo up; sleep 100000"], streams)
        )
    )
    worker.start()
    while b"up" not in out.data:
        threading.Event().wait(0.02)
    streams.cancelled.set()  # type: ignore[attr-defined]
    worker.join()
    assert result == [-1]

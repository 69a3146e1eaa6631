"""The PortForwarder contract, run against the in-memory fake and the netns forwarder (root)."""

import threading
from collections.abc import Iterator

import pytest

from adapters.streaming.buffers import InputBuffer
from adapters.streaming.netns_port_forwarder import NetnsPortForwarder, connect_in_netns
from domain.errors import Unavailable
from ports.streaming import PortForwarder
from tests.fakes.streaming import InMemoryPortForwarder
from tests.streaming.netns import PodNetns


class Pipe:
    """A DuplexStream whose client side the test drives."""

    def __init__(self) -> None:
        self.to_port = InputBuffer()
        self.from_port = bytearray()
        self.closed = threading.Event()

    def read(self, size: int) -> bytes:
        return self.to_port.read(size)

    def write(self, data: bytes) -> None:
        self.from_port += data

    def close(self) -> None:
        self.closed.set()


class Subject:
    def __init__(self, forwarder: PortForwarder, sandbox: str, port: int, closed_port: int) -> None:
        self.forwarder, self.sandbox, self.port, self.closed_port = forwarder, sandbox, port, closed_port


@pytest.fixture(scope="module", params=["fake", pytest.param("netns", marks=pytest.mark.root)])
def subject(request: pytest.FixtureRequest) -> Iterator[Subject]:
    if request.param == "fake":
        fake = InMemoryPortForwarder()
        fake.services[("pod", 8080)] = bytes.upper
        yield Subject(fake, "pod", 8080, 8081)
        return
    netns = PodNetns().start()
    try:
        for _ in range(200):
            try:
                connect_in_netns(netns.path, netns.echo_port, 1.0).close()
                break
            except Unavailable:
                threading.Event().wait(0.05)
        forwarder = NetnsPortForwarder({"pod": netns.path}.__getitem__)
        yield Subject(forwarder, "pod", netns.echo_port, netns.closed_port)
    finally:
        netns.stop()


def test_bytes_go_to_the_port_and_the_answer_comes_back(subject: Subject) -> None:
    pipe = Pipe()
    pipe.to_port.feed(b"hello ")
    pipe.to_port.feed(b"pod")
    pipe.to_port.end()  # the client half-closes; the answer still comes back
    subject.forwarder.port_forward(subject.sandbox, subject.port, pipe, threading.Event())
    assert bytes(pipe.from_port) == b"HELLO POD"
    assert pipe.closed.is_set()


def test_a_port_nobody_listens_on_raises_with_a_message(subject: Subject) -> None:
    with pytest.raises(Unavailable, match=str(subject.closed_port)):
        subject.forwarder.port_forward(subject.sandbox, subject.closed_port, Pipe(), threading.Event())


def test_cancel_ends_a_forward_whose_client_never_finishes(subject: Subject) -> None:
    pipe = Pipe()
    cancelled = threading.Event()
    done = threading.Event()

    def forward() -> None:
        subject.forwarder.port_forward(subject.sandbox, subject.port, pipe, cancelled)
        done.set()

    worker = threading.Thread(target=forward)
    worker.start()
    pipe.to_port.feed(b"partial")
    cancelled.set()
    pipe.to_port.end()  # what the server does when the connection goes: the stream ends too
    worker.join()
    assert done.is_set()

"""The ServiceManager port against the fake and sd_notify over a real unix datagram socket (what systemd
listens on as $NOTIFY_SOCKET): each call is one message with the state systemd expects."""

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.systemd.notify import SdNotify
from ports.service_manager import ServiceManager
from tests.fakes.service_manager import FakeServiceManager


class Listener:
    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(10)

    def next(self) -> str:
        return self.sock.recv(4096).decode().splitlines()[0]


@pytest.fixture(params=["fake", "sd_notify"])
def manager(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ServiceManager, object]]:
    if request.param == "fake":
        fake = FakeServiceManager(watchdog_interval=1.5)
        yield fake, fake
        return
    listener = Listener(tmp_path / "notify")
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "3000000"}
    env["WATCHDOG_PID"] = str(os.getpid())
    yield SdNotify(env), listener
    listener.sock.close()


def _received(observer: object) -> str:
    if isinstance(observer, FakeServiceManager):
        return observer.messages.pop(0)
    assert isinstance(observer, Listener)
    return observer.next()


def test_each_state_is_one_message(manager: tuple[ServiceManager, object]) -> None:
    service, observer = manager
    service.ready()
    assert _received(observer) == "READY=1"
    service.reloading()
    assert _received(observer) == "RELOADING=1"
    service.stopping()
    assert _received(observer) == "STOPPING=1"
    service.watchdog()
    assert _received(observer) == "WATCHDOG=1"


def test_the_watchdog_is_pinged_at_half_its_timeout(manager: tuple[ServiceManager, object]) -> None:
    service, _ = manager
    assert service.watchdog_interval() == 1.5


def test_without_a_notify_socket_nothing_is_sent_and_there_is_no_watchdog() -> None:
    quiet = SdNotify({"WATCHDOG_USEC": "3000000"})
    quiet.ready()
    assert quiet.watchdog_interval() is None
    other = SdNotify({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "3000000", "WATCHDOG_PID": "1"})
    assert other.watchdog_interval() is None  # meant for another process


def test_the_daemon_s_children_do_not_inherit_the_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """runc (started by conmon) would take an inherited NOTIFY_SOCKET as the container's to proxy."""
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "1000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
    manager = SdNotify()
    assert manager.watchdog_interval() == 0.5
    assert not {"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"} & set(os.environ)

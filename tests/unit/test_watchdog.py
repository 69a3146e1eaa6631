"""The watchdog thread pings while the daemon runs and ends with it; no watchdog, no thread."""

import threading

from adapters.systemd.watchdog import start_watchdog
from tests.fakes.service_manager import FakeServiceManager


def test_pings_until_stopping() -> None:
    manager = FakeServiceManager(watchdog_interval=0.001)
    stopping = threading.Event()
    thread = start_watchdog(manager, stopping)
    assert thread is not None
    while manager.messages.count("WATCHDOG=1") < 3:
        stopping.wait(0.001)
    stopping.set()
    thread.join()
    count = len(manager.messages)
    stopping.wait(0.01)
    assert len(manager.messages) == count


def test_no_watchdog_no_thread() -> None:
    assert start_watchdog(FakeServiceManager(), threading.Event()) is None

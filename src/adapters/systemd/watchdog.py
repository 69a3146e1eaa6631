"""Pings the service manager's watchdog while the daemon runs (systemd's WatchdogSec=)."""

import threading

from ports.service_manager import ServiceManager


def start_watchdog(manager: ServiceManager, stopping: threading.Event) -> threading.Thread | None:
    """A thread that sends WATCHDOG=1 every half timeout until `stopping` is set; None without a watchdog."""
    interval = manager.watchdog_interval()
    if interval is None:
        return None

    def ping() -> None:
        while not stopping.wait(interval):
            manager.watchdog()

    thread = threading.Thread(target=ping, name="watchdog", daemon=True)
    thread.start()
    return thread

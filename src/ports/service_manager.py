"""The service manager that started the daemon (systemd with Type=notify, or nothing): told when the daemon is
ready, reloading or stopping, and pinged while it is healthy when a watchdog is configured."""

from typing import Protocol


class ServiceManager(Protocol):
    def ready(self) -> None: ...

    def reloading(self) -> None:
        """Configuration is being reloaded; `ready()` ends the reload."""
        ...

    def stopping(self) -> None: ...

    def watchdog_interval(self) -> float | None:
        """Seconds between `watchdog()` pings the manager expects (half its timeout), None for no watchdog."""
        ...

    def watchdog(self) -> None: ...

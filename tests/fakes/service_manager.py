"""A service manager that remembers what it was told, in order."""


class FakeServiceManager:
    def __init__(self, watchdog_interval: float | None = None) -> None:
        self.messages: list[str] = []
        self._interval = watchdog_interval

    def ready(self) -> None:
        self.messages.append("READY=1")

    def reloading(self) -> None:
        self.messages.append("RELOADING=1")

    def stopping(self) -> None:
        self.messages.append("STOPPING=1")

    def watchdog_interval(self) -> float | None:
        return self._interval

    def watchdog(self) -> None:
        self.messages.append("WATCHDOG=1")

"""A Clock that moves only when the test says so."""


class FakeClock:
    def __init__(self, now_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now_ns = now_ns
        self._monotonic = 1000.0

    def advance(self, seconds: float) -> None:
        self._now_ns += int(seconds * 1_000_000_000)
        self._monotonic += seconds

    def step_wall_clock(self, seconds: float) -> None:
        """The wall clock set forward or back (NTP, an operator); the monotonic clock does not move."""
        self._now_ns += int(seconds * 1_000_000_000)

    def now_ns(self) -> int:
        return self._now_ns

    def monotonic(self) -> float:
        return self._monotonic

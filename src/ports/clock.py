"""Time, injected so that rates and periods can be tested without sleeping."""

from typing import Protocol


class Clock(Protocol):
    def now_ns(self) -> int:
        """Wall-clock time in nanoseconds since the epoch (CRI timestamps)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (ages and periods)."""
        ...

"""The thread that refreshes the stats cache every `period` seconds (nothing runs when the period is 0)."""

import threading

import structlog

from domain.stats import StatsService

_log = structlog.get_logger("pycrio.stats")


class StatsCollector:
    def __init__(self, service: StatsService, period: float) -> None:
        self._service = service
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sweeps = 0

    def start(self) -> None:
        if self._period <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="stats-collector", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._service.collect()
                self.sweeps += 1
            except Exception:  # one bad sweep must not end collection
                _log.exception("stats sweep failed")
            self._stop.wait(self._period)

"""Notices a pod's infra process dying the moment it happens, so the pod's STOPPED event goes out at once.

Without it a death is learnt only when something lists or asks for the pod. The generic PLEG relists every
second, but an evented kubelet (EventedPLEG) relists only every few minutes and waits for events meanwhile:
its pod would stay "running" with no infra process. One background thread sleeps in poll(2) on the epoll set
of the infra processes' pidfds (liveness.py) and a stop `Wakeup`, with no timeout: an idle daemon does not
wake it. `on_exit()` is then called once per wake-up; it finds out which pods lost their infra process.
"""

from collections.abc import Callable

import structlog

from adapters.namespaces.liveness import ProcessLiveness
from adapters.readiness import Wakeup, WatchThread, readable

_log = structlog.get_logger("pycrio.infra")


class InfraExitWatcher:
    def __init__(self, liveness: ProcessLiveness, on_exit: Callable[[], None]) -> None:
        self._liveness = liveness
        self._on_exit = on_exit
        self._thread = WatchThread("infra-exit-watcher", self._loop)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def _loop(self, stop: Wakeup) -> None:
        while stop.fileno() not in readable([self._liveness, stop]):
            if not self._liveness.take_exited():
                continue
            try:
                self._on_exit()
            except Exception:  # one failed look must not end the watch
                _log.exception("handling an infra process exit failed")

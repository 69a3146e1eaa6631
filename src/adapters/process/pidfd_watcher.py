"""Notices a watched process dying the moment it happens, so that the STOPPED event goes out at once.

Two kinds of process are watched this way: pods' infra processes (a dead one makes its pod NOTREADY) and
containers' monitors (a conmon killed without writing the exit file would otherwise leave its container
RUNNING until someone asks for it). Without this, such a death is learnt only when something lists or asks:
the generic PLEG relists every second, but an evented kubelet (EventedPLEG) relists only every few minutes
and waits for events meanwhile. One background thread sleeps in poll(2) on the epoll sets of every
`ProcessLiveness` (liveness.py: one pidfd per process) and a stop `Wakeup`, with no timeout: an idle daemon
does not wake it. When a set becomes readable its exited processes are taken and its `on_exit()` is called
once; the callback finds out which objects lost their process.
"""

from collections.abc import Callable, Sequence

import structlog

from adapters.process.liveness import ProcessLiveness
from adapters.readiness import Wakeup, WatchThread, readable

_log = structlog.get_logger("pycrio.exits")

PidfdWatch = tuple[ProcessLiveness, Callable[[], None]]


class PidfdExitWatcher:
    def __init__(self, watches: Sequence[PidfdWatch]) -> None:
        self._watches = list(watches)
        self._thread = WatchThread("pidfd-exit-watcher", self._loop)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._thread.stop()

    def _loop(self, stop: Wakeup) -> None:
        while True:
            ready = readable([*(liveness for liveness, _ in self._watches), stop])
            if stop.fileno() in ready:
                return
            for liveness, on_exit in self._watches:
                if liveness.fileno() not in ready or not liveness.take_exited():
                    continue
                try:
                    on_exit()
                except Exception:  # one failed look must not end the watch
                    _log.exception("handling a process exit failed")

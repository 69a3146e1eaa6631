"""The pidfd watcher's callback for containers' monitors: the containers service looks at the containers
whose conmon (or, once conmon is lost, own process) has exited, and each container found running on without
its monitor is counted for the metrics. Also a background service: at start it looks once, which watches
every restored container's conmon again (and notices those that died while the daemon was down)."""

import threading

from app.links.retrying import until_done
from domain.containers import ContainerService
from ports.metrics import RuntimeMetrics


class MonitorExits:
    def __init__(self, service: ContainerService, metrics: RuntimeMetrics) -> None:
        self._service = service
        self._metrics = metrics
        self._lock = threading.Lock()
        self._looking = False  # a look thread runs
        self._again = False  # another exit came while it ran: it looks once more

    def start(self) -> None:
        self.on_exit()

    def stop(self) -> None:
        pass

    def on_exit(self) -> None:
        # Its own thread: the look waits for each container's lock (a StopContainer holds one while it kills)
        # and asks the runtime; the watcher thread must go back to sleep at once. Exits that come while it
        # looks (a pod's containers stopped together) make it look once more, not start a thread each.
        with self._lock:
            if self._looking:
                self._again = True
                return
            self._looking = True
        threading.Thread(target=self._looks, name="monitor-exit", daemon=True).start()

    def _looks(self) -> None:
        while True:
            self._look()
            with self._lock:
                if not self._again:
                    self._looking = False
                    return
                self._again = False

    def _look(self) -> None:
        until_done(self._look_once, "looking at containers whose monitor exited")

    def _look_once(self) -> None:
        for _ in self._service.look_at_monitors():
            self._metrics.container_monitor_lost()

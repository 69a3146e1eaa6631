"""The exit-file watcher's callback: the containers service learns the exit (and reports it as STOPPED),
then the runtime's state of the exited container is deleted, so that RemoveContainer only drops records;
OOM kills are counted for the metrics."""

import threading

from app.links.retrying import until_done
from domain.containers import REASON_OOM_KILLED, ContainerService, ContainerState
from domain.errors import NotFound
from ports.metrics import RuntimeMetrics


class ContainerExits:
    def __init__(self, service: ContainerService, metrics: RuntimeMetrics) -> None:
        self._service = service
        self._metrics = metrics

    def on_exit(self, container_id: str) -> None:
        # Its own thread: refreshing takes the container's lock, which a StopContainer in progress holds,
        # and other exits must not wait for that.
        threading.Thread(
            target=self._handle, args=(container_id,), name="container-exit", daemon=True
        ).start()

    def _handle(self, container_id: str) -> None:
        until_done(lambda: self._learn(container_id), f"learning the exit of container {container_id}")

    def _learn(self, container_id: str) -> None:
        try:
            container = self._service.status(container_id)  # learns the exit: STOPPED is reported
        except NotFound:
            return  # not a container's exit file (or already removed)
        self._service.release_runtime(container_id)
        if container.id != container_id or container.state != ContainerState.EXITED:
            return
        if container.reason == REASON_OOM_KILLED:
            self._metrics.container_oom_killed()

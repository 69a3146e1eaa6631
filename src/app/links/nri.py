"""Starts NRI (when it is on) once the services exist: a plugin's Synchronize sees the pods and containers
services, its updates go through the containers service, and its evictions stop containers."""

import structlog

from domain.containers import ContainerService
from domain.errors import PycrioError
from domain.nri import NriContainer, NriPod
from domain.nri_relay import NriRelay
from domain.sandboxes import SandboxService

_log = structlog.get_logger("pycrio.nri")
EVICTION_STOP_TIMEOUT = 10.0


class NriLink:
    """A background service (app/main.py starts it after the CRI server); nothing when NRI is off."""

    def __init__(
        self, relay: NriRelay | None, sandboxes: SandboxService, containers: ContainerService
    ) -> None:
        self._relay = relay
        self._sandboxes = sandboxes
        self._containers = containers

    def _snapshot(self) -> tuple[list[NriPod], list[NriContainer]]:
        return self._sandboxes.nri_pods(), self._containers.nri_containers()

    def _evict(self, container_id: str, reason: str) -> None:
        _log.info("NRI plugin evicts a container", container=container_id, reason=reason)
        try:
            self._containers.stop(container_id, EVICTION_STOP_TIMEOUT)
        except PycrioError as err:
            _log.warning("NRI eviction failed", container=container_id, error=str(err))

    def start(self) -> None:
        if self._relay is not None:
            self._relay.start(self._snapshot, self._containers.apply_nri_updates, self._evict)

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()

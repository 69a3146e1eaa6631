"""The pidfd exit watcher's callback for infra processes: the pods service looks at its READY pods' infra
processes, and each pod that lost its own becomes NOTREADY and is reported STOPPED."""

from domain.sandboxes import SandboxService


class InfraExits:
    def __init__(self, sandboxes: SandboxService) -> None:
        self._sandboxes = sandboxes

    def on_exit(self) -> None:
        self._sandboxes.list_version()

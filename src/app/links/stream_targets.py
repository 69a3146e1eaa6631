"""What the streaming service needs to know of containers and pods, answered by their services."""

from domain.containers import ContainerService
from domain.errors import FailedPrecondition
from domain.sandbox_model import SandboxState
from domain.sandboxes import SandboxService
from ports.streaming_targets import StreamContainer


class ServiceStreamTargets:
    def __init__(self, containers: ContainerService, sandboxes: SandboxService) -> None:
        self._containers = containers
        self._sandboxes = sandboxes

    def container(self, container_id: str) -> StreamContainer:
        found = self._containers.running(container_id)
        return StreamContainer(found.id, found.config.stdin, found.config.stdin_once, found.config.tty)

    def sandbox_netns(self, sandbox_id: str) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox.state is not SandboxState.READY:
            raise FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
        return sandbox.namespaces.network

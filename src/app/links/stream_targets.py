"""What the streaming server needs to know of containers and pods, answered by their services."""

from domain.containers import ContainerService
from domain.errors import FailedPrecondition
from domain.sandbox_model import SandboxState
from domain.sandboxes import SandboxService
from ports.streaming_targets import ContainerIo, StreamContainer


class ServiceStreamTargets:
    def __init__(self, containers: ContainerService, sandboxes: SandboxService) -> None:
        self._containers = containers
        self._sandboxes = sandboxes

    def container_io(self, container_id: str) -> ContainerIo:
        found = self._containers.stream_endpoints(container_id)
        return ContainerIo(
            container_id=found.container_id,
            runtime_path=found.runtime_binary,
            runtime_root=found.runtime_root,
            bundle=found.bundle,
            attach_socket=found.attach_socket,
            stdin=found.stdin,
            stdin_once=found.stdin_once,
            tty=found.tty,
        )

    def container(self, container_id: str) -> StreamContainer:
        found = self._containers.stream_endpoints(container_id)
        return StreamContainer(found.container_id, found.stdin, found.stdin_once, found.tty)

    def sandbox_netns(self, sandbox_id: str) -> str:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox.state is not SandboxState.READY:
            raise FailedPrecondition(f"pod sandbox {sandbox.id} is not ready")
        return sandbox.namespaces.network

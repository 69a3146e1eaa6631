"""What the daemon looks streaming targets up in until the containers and pods services exist in this branch.

With no container or sandbox store yet, every lookup truthfully answers NotFound. The containers service
(container id -> running state, conmon attach socket, bundle, runtime) and the pods service (sandbox id ->
network namespace path) replace this in `app/container.py` when their branches are merged.
"""

from domain.errors import NotFound
from ports.streaming_targets import ContainerIo, StreamContainer


class NoStreamTargets:
    def container(self, container_id: str) -> StreamContainer:
        raise NotFound(f"container {container_id!r} not found")

    def sandbox_netns(self, sandbox_id: str) -> str:
        raise NotFound(f"pod sandbox {sandbox_id!r} not found")

    def container_io(self, container_id: str) -> ContainerIo:
        raise NotFound(f"container {container_id!r} not found")

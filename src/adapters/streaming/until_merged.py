"""What the daemon streams to until the containers and pods services exist in this branch.

With no container or sandbox store yet, every lookup truthfully answers NotFound, so the exec/attach
backend below is never reached; both are replaced in `app/container.py` when the containers branch
(conmon exec/attach) and the pods branch (sandbox network namespaces) are merged.
"""

from domain.errors import NotFound, Unavailable
from ports.streaming import ProcessStreams
from ports.streaming_targets import StreamContainer


class NoStreamTargets:
    def container(self, container_id: str) -> StreamContainer:
        raise NotFound(f"container {container_id!r} not found")

    def sandbox_netns(self, sandbox_id: str) -> str:
        raise NotFound(f"pod sandbox {sandbox_id!r} not found")


class NoContainerStreams:
    def exec(self, container_id: str, cmd: list[str], streams: ProcessStreams) -> int:
        raise Unavailable("exec needs the conmon container backend, which this build does not have")

    def attach(self, container_id: str, streams: ProcessStreams) -> None:
        raise Unavailable("attach needs the conmon container backend, which this build does not have")

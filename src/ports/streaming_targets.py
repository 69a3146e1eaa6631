"""What streaming needs to know about containers and sandboxes, and nothing more.

The containers and pods services satisfy this; streaming only checks that a target exists (and is in a state
that can stream) and finds the sandbox's network namespace for PortForward.
"""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class StreamContainer:
    id: str
    # How the container was created: attach honours stdin only when the container has one, stdin_once
    # closes it after the first attach detaches, tty picks one output stream.
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False


class StreamTargets(Protocol):
    def container(self, container_id: str) -> StreamContainer:
        """The running container; NotFound if absent, FailedPrecondition if it is not running."""
        ...

    def sandbox_netns(self, sandbox_id: str) -> str:
        """Path of the sandbox's network namespace ("" for a host-network sandbox); NotFound if absent."""
        ...

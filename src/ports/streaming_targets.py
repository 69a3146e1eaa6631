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


@dataclass(frozen=True)
class ContainerIo:
    """Where a running container's I/O can be reached: what the real exec/attach backend needs."""

    container_id: str
    runtime_path: str  # the OCI runtime binary (runc)
    runtime_root: str  # its --root
    bundle: str  # holds config.json, whose process is the template for an exec, and conmon's ctl fifo
    attach_socket: str  # conmon's attach socket (SOCK_SEQPACKET)
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False


class ContainerIoLookup(Protocol):
    def container_io(self, container_id: str) -> ContainerIo:
        """The running container's I/O endpoints; NotFound if absent, FailedPrecondition if not running."""
        ...

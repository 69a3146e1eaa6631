"""The backend the streaming server drives: run an exec, join a container's main process, forward a port.

The server owns the wire protocols (SPDY, WebSocket) and hands the backend plain byte streams. A backend
call returns when the process ends or `cancelled` is set (the client went away, or the stream idled out);
then it must leave no process, thread or socket behind.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TerminalSize:
    width: int
    height: int


class ByteSource(Protocol):
    def read(self, size: int) -> bytes:
        """Block for up to `size` bytes; b"" at end of stream (the client closed it, or went away)."""
        ...


class ByteSink(Protocol):
    def write(self, data: bytes) -> None:
        """Send bytes to the client; raises OSError once the client is gone."""
        ...

    def close(self) -> None:
        """No more bytes from this side (the client sees end of stream)."""
        ...


class Cancellation(Protocol):
    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class DuplexStream(ByteSource, ByteSink, Protocol):
    """One forwarded connection: bytes from the client to the port and back."""


@dataclass
class ProcessStreams:
    """The streams of one exec or attach; absent ones are None. With tty, stderr is None."""

    stdin: ByteSource | None
    stdout: ByteSink | None
    stderr: ByteSink | None
    tty: bool
    # Terminal sizes from the client, in order; ends when the client closes its resize stream.
    resize: Iterator[TerminalSize] | None
    cancelled: Cancellation


class ContainerStreams(Protocol):
    def exec(self, container_id: str, cmd: list[str], streams: ProcessStreams) -> int:
        """Run `cmd` in the container wired to `streams`; its exit code (-1 if cancelled before it ended)."""
        ...

    def attach(self, container_id: str, streams: ProcessStreams) -> None:
        """Join the container's main process until it exits, the client detaches or `cancelled` is set."""
        ...


class PortForwarder(Protocol):
    def port_forward(self, sandbox_id: str, port: int, stream: DuplexStream, cancelled: Cancellation) -> None:
        """Connect to localhost:`port` in the sandbox's network namespace and copy both ways until both
        directions end; raises (with a message for the client) when the connection cannot be made."""
        ...

"""The NRI plugins connected to the runtime (containerd/nri's protocol over its unix socket).

The adapter accepts connections, registers and configures each plugin, and hands it to the domain
(domain/nri_relay.py), which synchronizes it and from then on tells it about the events it subscribed to."""

from collections.abc import Callable, Sequence
from typing import Protocol

from domain.nri import NriContainer, NriEvent, NriEviction, NriPod, NriReply, NriRequest, NriUpdate

# What a plugin's unsolicited UpdateContainers asks for; the answer is the updates that failed.
UpdateHandler = Callable[[str, Sequence[NriUpdate], Sequence[NriEviction]], list[NriUpdate]]


class NriPlugin(Protocol):
    @property
    def name(self) -> str:
        """ "<index>-<name>" as registered; plugins are consulted in this order."""
        ...

    @property
    def closed(self) -> bool:
        """True once the connection is gone (or was closed after a timeout)."""
        ...

    def subscribed(self, event: NriEvent) -> bool: ...

    def call(self, request: NriRequest) -> NriReply:
        """Relay one event; Unavailable (with the plugin's name) when it fails, answers an error or takes
        longer than the request timeout (the plugin is then closed)."""
        ...

    def synchronize(self, pods: Sequence[NriPod], containers: Sequence[NriContainer]) -> list[NriUpdate]: ...

    def close(self) -> None: ...


class NriPlugins(Protocol):
    def start(self, on_connect: Callable[[NriPlugin], None], on_update: UpdateHandler) -> None:
        """Accept plugins from now on. `on_connect` runs (on the adapter's thread) for every plugin once it
        registered and took its configuration; it raises to refuse the plugin."""
        ...

    def stop(self) -> None:
        """Stop accepting and close every connection."""
        ...

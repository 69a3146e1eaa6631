"""The Linux namespaces a pod's containers share.

Each private namespace is pinned by a bind mount of its nsfs file under the runtime's run dir, so it
outlives every process (the containers join it by path). Namespaced sysctls and the hostname are set when
the namespaces are made, before any container can see them.
"""

from dataclasses import dataclass, field
from typing import Protocol

from domain.id_mappings import UserNamespace


@dataclass(frozen=True)
class NamespaceRequest:
    """Which namespaces to make private (False: the pod shares the host's)."""

    network: bool = True
    ipc: bool = True
    uts: bool = True
    # Set in the new UTS namespace.
    hostname: str = ""
    # Namespaced sysctls (net.* in the network namespace, IPC ones in the IPC namespace).
    sysctls: dict[str, str] = field(default_factory=dict)
    # A user namespace with these mappings, made first: the other namespaces are then made inside it, so
    # it owns them (a container in it may mount sysfs and mqueue, and set namespaced sysctls).
    user_namespace: UserNamespace | None = None


@dataclass(frozen=True)
class PodNamespaces:
    """Paths of the pinned namespaces; empty when the pod uses the host's."""

    network: str = ""
    ipc: str = ""
    uts: str = ""
    user: str = ""


class Namespaces(Protocol):
    def create(self, sandbox_id: str, request: NamespaceRequest) -> PodNamespaces:
        """Make and pin the requested namespaces. On failure nothing is left behind.

        Raises InvalidArgument when a sysctl does not exist or its value is refused by the kernel.
        """
        ...

    def exists(self, path: str) -> bool:
        """Whether `path` still pins a namespace."""
        ...

    def remove(self, sandbox_id: str) -> None:
        """Unpin and delete every namespace of the sandbox; removing absent ones is not an error."""
        ...

"""Registry credentials the node holds, for pulls whose request carries none (containers-auth.json(5))."""

from typing import Protocol

from ports.registry import RegistryAuth


class CredentialStore(Protocol):
    def lookup(self, reference: str, namespace: str = "") -> RegistryAuth | None:
        """Credentials for a fully qualified `host/path` reference (tag or digest ignored): the most
        specific entry wins (`host/a/b` over `host/a` over `host`); a pod's `namespace` may have its own.
        None when nothing matches."""
        ...

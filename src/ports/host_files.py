"""The host's file system as the OCI spec builder needs it: bind-mount sources, devices, profile files."""

from typing import Protocol

from domain.oci_spec import HostDevice


class HostFiles(Protocol):
    def resolve(self, path: str) -> str | None:
        """The path with symlinks resolved, or None when it does not exist."""
        ...

    def device(self, path: str) -> HostDevice | None:
        """The character or block device at `path` (symlinks followed), None when it is not one."""
        ...

    def all_devices(self) -> tuple[HostDevice, ...]:
        """Every device under /dev (for privileged containers)."""
        ...

    def read_text(self, path: str) -> str | None:
        """A small text file (a seccomp profile), None when absent."""
        ...

    def remove_if_empty(self, path: str) -> None:
        """Remove an empty directory or empty regular file at `path` (not following a symlink); anything
        else, or nothing there, stays as it is. For the mount points runc makes inside bind-mounted host
        directories when a create that made them fails."""
        ...

"""The host's file system as the OCI spec builder needs it: bind-mount sources, devices, profile files."""

from typing import Protocol

from domain.oci_spec import HostDevice

# Bytes of a text file read for a request (a seccomp profile: Docker's default is about 30 KiB).
MAX_TEXT_FILE = 1024 * 1024


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
        """A small UTF-8 text file (a seccomp profile), None when absent. Never blocks (a FIFO is refused);
        InvalidArgument when it is not a regular file, is over MAX_TEXT_FILE bytes or is not UTF-8."""
        ...

    def remove_if_empty(self, path: str) -> None:
        """Remove an empty directory or empty regular file at `path` (not following a symlink); anything
        else, or nothing there, stays as it is. For the mount points runc makes inside bind-mounted host
        directories when a create that made them fails."""
        ...

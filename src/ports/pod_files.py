"""Per-pod files the pod's containers bind-mount: hostname, hosts, resolv.conf and a /dev/shm tmpfs."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class PodFilePaths:
    hostname: str
    hosts: str
    resolv_conf: str
    # A tmpfs of its own, or /dev/shm of the host when the pod shares the host's IPC namespace.
    shm: str


@dataclass(frozen=True)
class PodFileContents:
    hostname: str
    # None: copy the node's file (host network or no DNS config).
    hosts: str | None
    resolv_conf: str | None
    private_shm: bool = True
    shm_size_bytes: int = 64 * 1024 * 1024
    # The kubelet's directory for the pod's container logs; empty for none. Made if missing, without
    # following symlinks; on removal only the directories this write made go (the kubelet's stay).
    log_directory: str = ""
    # Host uid and gid of the pod's root: owner of the files and the shm tmpfs, so that a pod in a user
    # namespace sees them as root's, as it would without one.
    owner: tuple[int, int] = (0, 0)


class PodFiles(Protocol):
    def write(self, sandbox_id: str, contents: PodFileContents) -> PodFilePaths:
        """Write (or rewrite) the files and mount the shm tmpfs once."""
        ...

    def remove(self, sandbox_id: str) -> None:
        """Unmount the shm tmpfs, delete the files and the log directories write made; idempotent."""
        ...

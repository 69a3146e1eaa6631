"""How much a directory tree holds: bytes on disk and inodes (a container's writable layer)."""

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class DiskUsage:
    used_bytes: int
    inodes_used: int


@dataclass(frozen=True)
class FilesystemCapacity:
    """The filesystem holding a path: its size and inodes (statvfs)."""

    total_bytes: int
    inodes_total: int
    inodes_free: int


class DiskUsageReader(Protocol):
    def usage(self, path: str) -> DiskUsage:
        """Walks the tree (can be slow on big trees: callers cache). NotFound when `path` is absent."""
        ...

    def capacity(self, path: str) -> FilesystemCapacity:
        """Of the filesystem that holds `path` (cheap); NotFound when `path` is absent."""
        ...

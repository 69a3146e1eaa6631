"""An in-memory DiskUsageReader that counts how often it was asked (walks are the costly part)."""

from domain.errors import NotFound
from ports.disk_usage import DiskUsage, FilesystemCapacity


class FakeDiskUsage:
    def __init__(self) -> None:
        self.trees: dict[str, DiskUsage] = {}
        self.filesystem = FilesystemCapacity(
            total_bytes=10 * 1024**3, inodes_total=655_360, inodes_free=600_000
        )
        self.walks = 0

    def usage(self, path: str) -> DiskUsage:
        self.walks += 1
        if path not in self.trees:
            raise NotFound(f"{path} not found")
        return self.trees[path]

    def capacity(self, path: str) -> FilesystemCapacity:
        if path not in self.trees:
            raise NotFound(f"{path} not found")
        return self.filesystem

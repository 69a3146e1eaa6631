"""An in-memory DiskUsageReader that counts how often it was asked (walks are the costly part)."""

from domain.errors import NotFound
from ports.disk_usage import DiskUsage


class FakeDiskUsage:
    def __init__(self) -> None:
        self.trees: dict[str, DiskUsage] = {}
        self.walks = 0

    def usage(self, path: str) -> DiskUsage:
        self.walks += 1
        if path not in self.trees:
            raise NotFound(f"{path} not found")
        return self.trees[path]

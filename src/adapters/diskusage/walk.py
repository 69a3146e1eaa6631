"""DiskUsageReader that walks a tree like `du -s --inodes`: allocated blocks, each inode counted once.

It never follows symlinks and never crosses into another filesystem (a mount inside a container's
writable layer is not the layer's usage). Files that vanish during the walk are skipped. The walk holds one
descriptor and no recursion (adapters/host/trees.py): a container may nest directories past PATH_MAX.
"""

import os
import stat

from adapters.host.trees import tree_usage
from domain.errors import NotFound
from ports.disk_usage import DiskUsage, FilesystemCapacity


class WalkingDiskUsage:
    def usage(self, path: str) -> DiskUsage:
        try:
            top = os.lstat(path)
        except FileNotFoundError:
            raise NotFound(f"{path} not found") from None
        if not stat.S_ISDIR(top.st_mode):
            return DiskUsage(used_bytes=top.st_blocks * 512, inodes_used=1)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            raise NotFound(f"{path} not found") from None
        try:
            used, inodes = tree_usage(fd, every_inode_once=False)
        finally:
            os.close(fd)
        return DiskUsage(used_bytes=used, inodes_used=inodes)

    def capacity(self, path: str) -> FilesystemCapacity:
        try:
            fs = os.statvfs(path)
        except FileNotFoundError:
            raise NotFound(f"{path} not found") from None
        return FilesystemCapacity(
            total_bytes=fs.f_blocks * fs.f_frsize, inodes_total=fs.f_files, inodes_free=fs.f_ffree
        )

"""DiskUsageReader that walks a tree like `du -s --inodes`: allocated blocks, each inode counted once.

It never follows symlinks and never crosses into another filesystem (a mount inside a container's
writable layer is not the layer's usage). Files that vanish during the walk are skipped.
"""

import os
import stat

from domain.errors import NotFound
from ports.disk_usage import DiskUsage, FilesystemCapacity


class WalkingDiskUsage:
    def usage(self, path: str) -> DiskUsage:
        try:
            top = os.lstat(path)
        except FileNotFoundError:
            raise NotFound(f"{path} not found") from None
        seen: set[int] = set()
        used = top.st_blocks * 512
        inodes = 1
        pending = [path] if stat.S_ISDIR(top.st_mode) else []
        while pending:
            directory = pending.pop()
            try:
                entries = list(os.scandir(directory))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                continue
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if info.st_dev != top.st_dev:
                    continue
                if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                    if info.st_ino in seen:
                        continue
                    seen.add(info.st_ino)
                used += info.st_blocks * 512
                inodes += 1
                if stat.S_ISDIR(info.st_mode):
                    pending.append(entry.path)
        return DiskUsage(used_bytes=used, inodes_used=inodes)

    def capacity(self, path: str) -> FilesystemCapacity:
        try:
            fs = os.statvfs(path)
        except FileNotFoundError:
            raise NotFound(f"{path} not found") from None
        return FilesystemCapacity(
            total_bytes=fs.f_blocks * fs.f_frsize, inodes_total=fs.f_files, inodes_free=fs.f_ffree
        )

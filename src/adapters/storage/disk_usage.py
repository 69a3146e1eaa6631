"""Disk usage of a directory tree the way `du` counts it: allocated blocks, each inode once."""

import os
import stat
from pathlib import Path


def disk_usage(root: Path) -> tuple[int, int]:
    """(bytes, inodes) used under `root`, never following symlinks; (0, 0) when it does not exist."""
    seen: set[tuple[int, int]] = set()
    used = 0
    stack = [str(root)]
    while stack:
        path = stack.pop()
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen:
            continue
        seen.add(key)
        used += info.st_blocks * 512
        if stat.S_ISDIR(info.st_mode):
            try:
                with os.scandir(path) as entries:
                    stack.extend(entry.path for entry in entries)
            except (FileNotFoundError, NotADirectoryError):
                continue
    return used, len(seen)

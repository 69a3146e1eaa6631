"""Disk usage of a directory tree the way `du` counts it: allocated blocks, each inode once."""

import os
from pathlib import Path

from adapters.host.trees import tree_usage

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def disk_usage(root: Path) -> tuple[int, int]:
    """(bytes, inodes) used under `root`, never following symlinks; (0, 0) when it does not exist. Any
    depth: a layer or writable layer may nest directories past PATH_MAX (adapters/host/trees.py)."""
    try:
        fd = os.open(root, _DIR_FLAGS)
    except FileNotFoundError:
        return 0, 0
    except NotADirectoryError:
        info = os.lstat(root)
        return info.st_blocks * 512, 1
    try:
        return tree_usage(fd)
    finally:
        os.close(fd)

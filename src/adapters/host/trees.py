"""Walk and remove directory trees of any depth, by descriptors, without recursion.

Image layers and containers' writable layers are shaped by whoever built the image or runs in the
container: a tree thousands of directories deep overflows Python's recursion limit in `shutil.rmtree`
(RecursionError, the tree stays) and its paths outgrow PATH_MAX, so every path-based call (`os.lstat`,
`os.scandir` of a joined path) fails with ENAMETOOLONG. Here one directory descriptor is held at a time:
the walk goes down with `openat(name, O_NOFOLLOW)` and back up with `openat("..")`, so neither the depth
nor the path length matters. Symlinks are never followed and a directory on another file system (a mount
point inside the tree) is neither entered nor removed.
"""

import contextlib
import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Called with a directory's descriptor and its entries; returns the subdirectories to enter.
Visit = Callable[[int, list[os.DirEntry[str]]], list[str]]
# Called with a directory's descriptor and the name of a subdirectory that was walked to its end.
Leave = Callable[[int, str], None]


def walk_tree(top_fd: int, visit: Visit, leave: Leave | None = None) -> None:
    """Depth-first over the tree below the open directory `top_fd` (which stays open and unchanged)."""
    device = os.fstat(top_fd).st_dev
    current = os.dup(top_fd)
    # One list per level below the top: the subdirectories of that level still to walk, and its own name.
    pending: list[tuple[str, list[str]]] = [("", visit(current, _entries(current)))]
    try:
        while pending:
            name, subdirs = pending[-1]
            if subdirs:
                child = subdirs.pop()
                try:
                    child_fd = os.open(child, _DIR_FLAGS, dir_fd=current)
                except (FileNotFoundError, NotADirectoryError):
                    continue  # gone, or replaced by a file or a symlink meanwhile
                except OSError as err:
                    if err.errno == errno.ELOOP:  # a symlink now, never followed
                        continue
                    raise
                if os.fstat(child_fd).st_dev != device:
                    os.close(child_fd)
                    continue
                os.close(current)
                current = child_fd
                pending.append((child, visit(current, _entries(current))))
                continue
            pending.pop()
            if not pending:
                break
            parent_fd = os.open("..", _DIR_FLAGS, dir_fd=current)
            os.close(current)
            current = parent_fd
            if leave is not None:
                leave(current, name)
    finally:
        os.close(current)


def _entries(dir_fd: int) -> list[os.DirEntry[str]]:
    with os.scandir(dir_fd) as found:
        return list(found)


def remove_tree_at(parent_fd: int, name: str) -> None:
    """Remove `name` in the directory `parent_fd` and everything below it (a symlink itself, never its
    target). Raises OSError when something cannot be removed; FileNotFoundError when `name` is absent."""
    try:
        os.unlink(name, dir_fd=parent_fd)
        return
    except IsADirectoryError:
        pass
    top = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    try:
        walk_tree(top, _unlinker(tolerant=False), _remove_dir)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=parent_fd)


def remove_tree(path: Path) -> None:
    """Remove the tree at `path`, best effort: what cannot be removed (a mount point, a busy file) stays,
    the rest goes. For temporary and abandoned trees, whose removal must never fail the caller."""
    try:
        parent = os.open(path.parent, _DIR_FLAGS)
    except OSError:
        return
    try:
        top = os.open(path.name, _DIR_FLAGS, dir_fd=parent)
    except (FileNotFoundError, NotADirectoryError):
        os.close(parent)
        return
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path.name, dir_fd=parent)
        os.close(parent)
        return
    try:
        with contextlib.suppress(OSError):
            walk_tree(top, _unlinker(tolerant=True), _remove_dir_tolerant)
        with contextlib.suppress(OSError):
            os.rmdir(path.name, dir_fd=parent)
    finally:
        os.close(top)
        os.close(parent)


def _unlinker(tolerant: bool) -> Visit:
    """A visit that unlinks every non-directory (skipping what fails when `tolerant`) and enters the rest."""

    def unlink_files(dir_fd: int, entries: list[os.DirEntry[str]]) -> list[str]:
        subdirs = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
                continue
            try:
                os.unlink(entry.name, dir_fd=dir_fd)
            except OSError:
                if not tolerant:
                    raise
        return subdirs

    return unlink_files


def _remove_dir(dir_fd: int, name: str) -> None:
    os.rmdir(name, dir_fd=dir_fd)


def _remove_dir_tolerant(dir_fd: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=dir_fd)


def tree_usage(top_fd: int, every_inode_once: bool = True) -> tuple[int, int]:
    """(bytes allocated, inodes) of the tree below `top_fd`, the top directory included, as `du` counts:
    each inode once (with `every_inode_once`, else only files with several links are deduplicated),
    symlinks not followed, other file systems not entered."""
    top = os.fstat(top_fd)
    seen: set[tuple[int, int]] = {(top.st_dev, top.st_ino)}
    totals = [top.st_blocks * 512, 1]

    def visit(dir_fd: int, entries: list[os.DirEntry[str]]) -> list[str]:
        subdirs = []
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if info.st_dev != top.st_dev:
                continue
            is_dir = stat.S_ISDIR(info.st_mode)
            if every_inode_once or (info.st_nlink > 1 and not is_dir):
                key = (info.st_dev, info.st_ino)
                if key in seen:
                    continue
                seen.add(key)
            totals[0] += info.st_blocks * 512
            totals[1] += 1
            if is_dir:
                subdirs.append(entry.name)
        return subdirs

    walk_tree(top_fd, visit)
    return totals[0], totals[1]

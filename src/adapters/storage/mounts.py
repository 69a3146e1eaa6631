"""Mounting overlay file systems with mount(2) (fsconfig for very deep images), unmounting with umount(2).

The layer directories are named through short link names, because the kernel caps mount options at one
page. mount(2) is called directly with absolute paths while they fit in that page (a process spared on
every CreateContainer); past it (about 170 layers, fewer for an idmapped rootfs), the layers are given one
at a time with fsconfig's `lowerdir+` (Linux 6.8), so overlayfs' own limit of 500 layers is what counts.
On older kernels mount(8) runs with the store root as its cwd and the paths relative to it, so an image of
~170 layers still mounts. (The daemon cannot chdir for a relative mount(2) itself: the working directory is
shared by all its threads.)
"""

import errno
import os
from pathlib import Path

from adapters.namespaces import linux
from adapters.process import runner
from domain.errors import Internal


def is_mounted(path: Path) -> bool:
    """Whether `path` is a mount point now (read from /proc/self/mountinfo, never stat through it).

    Asked on every container's create and removal, on hosts with hundreds of mounts: the path is escaped
    the way mountinfo writes it and looked for in the whole text first, so that a path that is not there
    (the usual answer) costs one substring search, and only the lines holding it are split."""
    target = _escape(os.path.abspath(path))
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        text = table.read()
    if f" {target} " not in text:
        return False
    for line in text.splitlines():
        if target in line:
            fields = line.split(" ", 5)
            if len(fields) > 4 and fields[4] == target:
                return True
    return False


_PAGE = 4096  # the kernel's cap on mount options (one page), terminating NUL included
_OPTION_SEPARATORS = (",", ":", "\\")  # a root holding one cannot be named in the options


def mount_overlay(cwd: Path, lower: list[str], upper: str, work: str, target: Path, timeout: float) -> None:
    """Mount an overlay on `target`; `lower` is top layer first, paths relative to `cwd`."""
    root = os.path.abspath(cwd)
    layers = ":".join(f"{root}/{layer}" for layer in lower)
    absolute = f"lowerdir={layers},upperdir={root}/{upper},workdir={root}/{work}"
    if len(absolute) < _PAGE and not any(sep in root for sep in _OPTION_SEPARATORS):
        try:
            linux.mount("overlay", str(target), "overlay", 0, absolute)
        except OSError as err:
            raise Internal(f"mounting the overlay on {target}: {err.strerror}") from None
        return
    if not any(sep in root for sep in _OPTION_SEPARATORS):
        try:
            linux.mount_overlay_by_layer(
                [f"{root}/{layer}" for layer in lower], f"{root}/{upper}", f"{root}/{work}", str(target)
            )
            return
        except OSError as err:
            if err.errno != errno.EINVAL:  # EINVAL: a kernel before 6.8, without `lowerdir+`
                raise Internal(f"mounting the overlay on {target}: {err}") from None
    options = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    if len(options) >= _PAGE:
        raise Internal(f"overlay mount options for {target} exceed one page ({len(lower)} layers)")
    runner.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(target)], timeout=timeout, cwd=str(cwd)
    )


def unmount(target: Path, timeout: float) -> None:
    """Unmount `target` if mounted; a busy mount is detached lazily so removal never hangs.

    umount(2) directly: it cannot hang the way a mount helper can, and spares a process per removal. It is
    tried at once (never following a symlink): EINVAL says `target` is no mount point, so the kernel's
    mount table, costly to read on a host with hundreds of mounts, is read only when something failed.
    `timeout` is kept for the callers' sake."""
    try:
        linux.umount2(str(target), linux.UMOUNT_NOFOLLOW)
        return
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.ENOENT):
            return  # not a mount point, or not there at all
        failed = err
    try:
        linux.umount2(str(target), linux.MNT_DETACH | linux.UMOUNT_NOFOLLOW)
    except OSError as lazy_err:
        if is_mounted(target):
            raise Internal(f"unmounting {target}: {failed}; lazily: {lazy_err}") from None


_ESCAPED = {ord(char): f"\\{ord(char):03o}" for char in " \t\n\\"}


def _escape(path: str) -> str:
    """A path as mountinfo writes it: space, tab, newline and backslash in octal."""
    return path.translate(_ESCAPED)

"""Mounting overlay file systems through the host's mount(8), unmounting them with umount(2).

The layer directories are passed relative to the store root (mount runs with that as its cwd) and through
short link names, because the kernel caps mount options at one page: with absolute chain-id paths an
image of ~40 layers would no longer fit.
"""

import os
from pathlib import Path

from adapters.namespaces import linux
from adapters.process import runner
from domain.errors import Internal


def is_mounted(path: Path) -> bool:
    """Whether `path` is a mount point now (read from /proc/self/mountinfo, never stat through it)."""
    target = os.path.abspath(path)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as table:
        for line in table:
            fields = line.split(" ")
            if len(fields) > 4 and _unescape(fields[4]) == target:
                return True
    return False


def mount_overlay(cwd: Path, lower: list[str], upper: str, work: str, target: Path, timeout: float) -> None:
    """Mount an overlay on `target`; `lower` is top layer first, paths relative to `cwd`."""
    options = f"lowerdir={':'.join(lower)},upperdir={upper},workdir={work}"
    if len(options) >= 4096:
        raise Internal(f"overlay mount options for {target} exceed one page ({len(lower)} layers)")
    runner.run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(target)], timeout=timeout, cwd=str(cwd)
    )


def unmount(target: Path, timeout: float) -> None:
    """Unmount `target` if mounted; a busy mount is detached lazily so removal never hangs.

    umount(2) directly: it cannot hang the way a mount helper can, and spares a process per removal.
    `timeout` is kept for the callers' sake."""
    if not is_mounted(target):
        return
    try:
        linux.umount2(str(target), 0)
    except OSError as err:
        if not is_mounted(target):
            return
        try:
            linux.umount2(str(target), linux.MNT_DETACH)
        except OSError as lazy_err:
            if is_mounted(target):
                raise Internal(f"unmounting {target}: {err}; lazily: {lazy_err}") from None


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal."""
    out = []
    index = 0
    while index < len(field):
        if field[index] == "\\" and index + 3 < len(field) and field[index + 1 : index + 4].isdigit():
            out.append(chr(int(field[index + 1 : index + 4], 8)))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return "".join(out)

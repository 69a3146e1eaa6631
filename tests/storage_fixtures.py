"""Shared set-up for tests of the overlay store: a store on a tmp dir, and no mount left behind."""

import contextlib
import subprocess
from pathlib import Path


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


def mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as table:
        for line in table:
            point = _unescape(line.split(" ")[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def unmount_all_under(root: Path) -> None:
    for point in sorted(mounts_under(root), key=len, reverse=True):
        with contextlib.suppress(subprocess.CalledProcessError):
            subprocess.run(["umount", "--lazy", point], check=True, capture_output=True)


def tree(root: Path) -> set[str]:
    """Every path under root (relative), symlinks not followed."""
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()

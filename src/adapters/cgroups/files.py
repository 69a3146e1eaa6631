"""Small readers for cgroup interface files: flat keyed files, single numbers, "max" limits."""

from pathlib import Path

# cgroup v1 writes "no limit" as PAGE_COUNTER_MAX pages; anything this large is no limit.
V1_UNLIMITED = 1 << 62


def read_int(path: Path) -> int | None:
    """The file's single integer, or None when the file is absent."""
    try:
        return int(path.read_text().split()[0])
    except FileNotFoundError:
        return None


def read_limit(path: Path) -> int | None:
    """A limit file: None for "max" (v2), for v1's huge "unlimited" value, or when absent."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if text == "max":
        return None
    value = int(text)
    return None if value >= V1_UNLIMITED else value


def read_keyed(path: Path) -> dict[str, int]:
    """A flat keyed file (`memory.stat`, `cpu.stat`, `memory.events`); empty when absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            values[key] = int(value)
    return values

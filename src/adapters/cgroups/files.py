"""Small readers for cgroup interface files: flat keyed files, single numbers, "max" limits."""

from pathlib import Path

from ports.cgroup_stats import Pressure, PressureLine

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


def read_pids(path: Path) -> tuple[int, ...]:
    """cgroup.procs: one pid a line; empty when absent."""
    try:
        return tuple(int(line) for line in path.read_text().split())
    except FileNotFoundError:
        return ()


def read_v1_blkio(bytes_file: Path, ops_file: Path) -> dict[tuple[int, int], list[int]]:
    """blkio.throttle.io_service_bytes / io_serviced (`8:0 Read 4096` lines) as
    {(major, minor): [read_bytes, write_bytes, reads, writes]}."""
    devices: dict[tuple[int, int], list[int]] = {}
    for path, offset in ((bytes_file, 0), (ops_file, 2)):
        try:
            lines = path.read_text().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) != 3 or ":" not in fields[0] or fields[1] not in ("Read", "Write"):
                continue
            major, minor = (int(n) for n in fields[0].split(":"))
            slot = devices.setdefault((major, minor), [0, 0, 0, 0])
            slot[offset + (0 if fields[1] == "Read" else 1)] = int(fields[2])
    return devices


def read_v2_io(path: Path) -> dict[tuple[int, int], list[int]]:
    """io.stat (`8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...`) in the same shape as read_v1_blkio."""
    devices: dict[tuple[int, int], list[int]] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return devices
    for line in lines:
        device, *pairs = line.split()
        if ":" not in device:
            continue
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        major, minor = (int(n) for n in device.split(":"))
        devices[(major, minor)] = [int(values.get(k, 0)) for k in ("rbytes", "wbytes", "rios", "wios")]
    return devices


def read_pressure(path: Path) -> Pressure | None:
    """A PSI file (`some avg10=0.00 avg60=0.00 avg300=0.00 total=0`, then `full ...`); None when absent or
    unreadable (PSI disabled: the file exists but reading it fails with EOPNOTSUPP)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    lines: dict[str, PressureLine] = {}
    for line in text.splitlines():
        kind, *pairs = line.split()
        values = dict(pair.split("=", 1) for pair in pairs if "=" in pair)
        try:
            lines[kind] = PressureLine(
                avg10=float(values["avg10"]),
                avg60=float(values["avg60"]),
                avg300=float(values["avg300"]),
                total_ns=int(values["total"]) * 1000,  # the kernel counts microseconds
            )
        except (KeyError, ValueError):
            continue
    if "some" not in lines:
        return None
    return Pressure(some=lines["some"], full=lines.get("full"))

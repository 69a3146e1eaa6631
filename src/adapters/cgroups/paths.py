"""Where a cgroup named for the OCI runtime lives inside a hierarchy, for both cgroup drivers.

cgroupfs: the path is used as given (`/kubepods/burstable/pod<uid>/<id>`).
systemd: a slice name expands along its dashes (`kubepods-burstable.slice` lives in `kubepods.slice`),
and runc's `slice:prefix:name` form names the scope `<prefix>-<name>.scope` inside that slice.
"""

from typing import Literal

from domain.errors import InvalidArgument

CgroupDriver = Literal["cgroupfs", "systemd"]


def hierarchy_path(cgroup: str, driver: CgroupDriver) -> str:
    """The cgroup's path from the hierarchy root, always starting with `/`."""
    if driver == "systemd" and (":" in cgroup or not cgroup.startswith("/")):
        path = _systemd_path(cgroup)
    else:
        path = "/" + cgroup.strip("/")
    if any(part in (".", "..") for part in path.split("/")):
        raise InvalidArgument(f"cgroup path {cgroup!r} must not contain . or .. components")
    return path


def expand_slice(name: str) -> str:
    """`a-b-c.slice` -> `/a.slice/a-b.slice/a-b-c.slice`; `-.slice` (the root slice) -> `/`."""
    if name in ("", "-.slice"):
        return "/"
    if not name.endswith(".slice") or "/" in name:
        raise InvalidArgument(f"{name!r} is not a systemd slice name")
    stem = name.removesuffix(".slice")
    if stem.startswith("-") or stem.endswith("-") or "--" in stem:
        raise InvalidArgument(f"{name!r} is not a valid systemd slice name")
    parts = stem.split("-")
    return "".join("/" + "-".join(parts[: i + 1]) + ".slice" for i in range(len(parts)))


def _systemd_path(cgroup: str) -> str:
    if ":" not in cgroup:
        return expand_slice(cgroup)
    fields = cgroup.split(":")
    if len(fields) != 3:
        raise InvalidArgument(f"systemd cgroup {cgroup!r} is not slice:prefix:name")
    slice_name, prefix, name = fields
    if not name:
        raise InvalidArgument(f"systemd cgroup {cgroup!r} has no name")
    # An already expanded slice path is taken as it is.
    parent = slice_name if slice_name.startswith("/") else expand_slice(slice_name or "system.slice")
    unit = name if name.endswith(".slice") else (f"{prefix}-{name}.scope" if prefix else f"{name}.scope")
    return parent.rstrip("/") + "/" + unit

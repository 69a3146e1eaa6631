"""Where a pod's cgroups are, for both cgroup drivers.

cgroupfs: the kubelet's cgroup_parent is a path (`/kubepods/burstable/pod<uid>`). systemd: it is a slice
name (`kubepods-burstable-pod<uid>.slice`) that systemd nests by its dashes, so the path on disk is
`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice` (runc's ExpandSlice).
"""

from domain.errors import InvalidArgument

SLICE_SUFFIX = ".slice"


def expand_slice(slice_name: str) -> str:
    """The cgroup path of a systemd slice name."""
    if not slice_name.endswith(SLICE_SUFFIX) or len(slice_name) <= len(SLICE_SUFFIX) or "/" in slice_name:
        raise InvalidArgument(f"cgroup parent {slice_name!r} is not a systemd slice name (x-y.slice)")
    stem = slice_name[: -len(SLICE_SUFFIX)]
    if stem == "-":
        return "/"
    path, prefix = "", ""
    for component in stem.split("-"):
        if not component:
            raise InvalidArgument(f"cgroup parent {slice_name!r} is not a valid systemd slice name")
        path += f"/{prefix}{component}{SLICE_SUFFIX}"
        prefix += f"{component}-"
    return path


def slice_unit_name(parent: str) -> str:
    """The slice's unit name when the parent is given as a path (`/test.slice`, or an expanded
    `/a.slice/a-b.slice`): its last component, as cri-o takes it (critest sends `/test.slice`)."""
    return parent.rstrip("/").rsplit("/", 1)[-1] if "/" in parent else parent


def cgroupfs_parent(cgroup_parent: str) -> str:
    """A cgroupfs parent as a clean absolute path."""
    parts = [p for p in cgroup_parent.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"cgroup parent {cgroup_parent!r} must not contain '.' or '..'")
    return "/" + "/".join(parts)


def monitor_cgroup(driver: str, conmon_cgroup: str, pod_parent: str, container_id: str) -> str:
    """Where a container's conmon moves once it has created the container, so that it is neither in the
    daemon's cgroup (`pycrio.service`: killed or accounted with it) nor in the container's cgroup. systemd:
    a scope in the pod's slice (`pod`) or the named slice; cgroupfs (only `pod`): a cgroup beside the
    pod's containers, `<pod parent>/pycrio-conmon-<id>` (cri-o's `crio-conmon-<id>`)."""
    if driver != "systemd":
        return f"{pod_parent.rstrip('/')}/pycrio-conmon-{container_id}"
    parent = (pod_parent or "/system.slice") if conmon_cgroup == "pod" else expand_slice(conmon_cgroup)
    return f"{parent.rstrip('/')}/pycrio-conmon-{container_id}.scope"


def _check_length(parent: str) -> None:
    """NAME_MAX per directory and PATH_MAX in all (the kernel counts bytes), before anything is made."""
    if len(parent.encode()) > 4096 or any(len(p.encode()) > 255 for p in parent.split("/")):
        raise InvalidArgument("cgroup_parent: a name longer than 255 bytes or a path longer than 4096")


def infra_cgroup(driver: str, parent: str, sandbox_id: str) -> tuple[str, str]:
    """(path of the parent, path of the infra process's cgroup) for a driver."""
    _check_length(parent)
    if driver == "systemd":
        expanded = expand_slice(slice_unit_name(parent))
        return expanded, f"{expanded.rstrip('/')}/pycrio-{sandbox_id}.scope"
    clean = cgroupfs_parent(parent)
    return clean, f"{clean.rstrip('/')}/pycrio-{sandbox_id}"


def cgroup_levels(path: str) -> tuple[str, ...]:
    """A path and its ancestors below the root, outermost first: "/a/b" -> ("/a", "/a/b")."""
    parts = [p for p in path.split("/") if p]
    return tuple("/" + "/".join(parts[: depth + 1]) for depth in range(len(parts)))

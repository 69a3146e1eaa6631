"""The OCI runtime spec (runtime-spec 1.0.2) of a container, built from its CRI config, image and sandbox.

Pure: every fact from the host (resolved host paths, device numbers, the daemon's capability bounding set and
oom_score_adj, the image's /etc/passwd, a Localhost seccomp file's text) is an input. A wrong field raises
InvalidArgument naming the field. The rules follow containerd's `internal/cri/opts/spec*.go` and cri-o's
`server/container_create_linux.go` (defaults for capabilities, masked and read-only paths, mounts).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from domain import cdi, seccomp
from domain.capabilities import CapabilitySets, container_capabilities
from domain.container_config import (
    ContainerConfig,
    ImageConfig,
    Mount,
    NamespaceMode,
    NamespaceOptions,
    Propagation,
    Resources,
    SandboxFacts,
)
from domain.errors import InvalidArgument
from domain.id_mappings import IdMapping, UserNamespace
from domain.oci_hooks import OciHook, add_hooks
from domain.userns import check_container_user_namespace
from domain.users import ResolvedUser, resolve_user
from ports.hugepages import HugePages

OCI_VERSION = "1.0.2"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# runc cannot run a container in less (cri-o refuses below the same value).
MIN_MEMORY_LIMIT = 12 * 1024 * 1024

# cri-o's defaults for non-privileged containers.
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
    "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)  # fmt: skip

SIGNALS: dict[str, int] = {
    "SIGHUP": 1, "SIGINT": 2, "SIGQUIT": 3, "SIGILL": 4, "SIGTRAP": 5, "SIGABRT": 6, "SIGIOT": 6, "SIGBUS": 7,
    "SIGFPE": 8, "SIGKILL": 9, "SIGUSR1": 10, "SIGSEGV": 11, "SIGUSR2": 12, "SIGPIPE": 13, "SIGALRM": 14,
    "SIGTERM": 15, "SIGSTKFLT": 16, "SIGCHLD": 17, "SIGCLD": 17, "SIGCONT": 18, "SIGSTOP": 19, "SIGTSTP": 20,
    "SIGTTIN": 21, "SIGTTOU": 22, "SIGURG": 23, "SIGXCPU": 24, "SIGXFSZ": 25, "SIGVTALRM": 26, "SIGPROF": 27,
    "SIGWINCH": 28, "SIGIO": 29, "SIGPOLL": 29, "SIGPWR": 30, "SIGSYS": 31, "SIGRTMIN": 34, "SIGRTMAX": 64,
}  # fmt: skip

_IPC_SYSCTLS = {
    "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "kernel.msgmax",
    "kernel.msgmni", "kernel.msgmnb", "kernel.sem",
}  # fmt: skip
_UTS_SYSCTLS = {"kernel.hostname", "kernel.domainname"}
_CPUSET = re.compile(r"[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*")
# The kernel's own limits: CONFIG_NR_CPUS and NODES_SHIFT at their largest, and the CFS quota it accepts
# (MAX_BW in kernel/sched/core.c, in microseconds).
MAX_CPUS = 8192
MAX_NUMA_NODES = 1024
MAX_CPU_QUOTA = 2**44 - 1
_log = structlog.get_logger("pycrio.containers")
PAGE_SIZE = re.compile(r"^\d+(KB|MB|GB|TB|PB)$")


@dataclass(frozen=True)
class HostDevice:
    """A device node on the host, as `stat` sees it."""

    path: str
    type: str  # "c" or "b"
    major: int
    minor: int
    file_mode: int = 0o666
    uid: int = 0
    gid: int = 0


@dataclass(frozen=True)
class HostFacts:
    """What the daemon knows about the node; read by adapters once at start-up."""

    bounding_capabilities: tuple[str, ...]
    min_oom_score_adj: int = -1000  # the daemon's own score: nothing may go lower without CAP_SYS_RESOURCE
    machine: str = "x86_64"
    cgroup_v2: bool = False
    cgroup_driver: str = "cgroupfs"
    swap_accounting: bool = True
    seccomp_default_when_empty: bool = False
    # Page sizes ("2MB") whose hugetlb limits the OCI runtime can set; limits for others are left out.
    hugepage_sizes: frozenset[str] = frozenset()
    # The kernel's boot id ("" when unknown): what was made in another boot is settled at start-up.
    boot_id: str = ""


@dataclass(frozen=True)
class SpecInputs:
    container_id: str
    config: ContainerConfig
    image: ImageConfig
    image_name: str
    sandbox: SandboxFacts
    host: HostFacts
    rootfs: str
    passwd: str = ""  # the image's /etc/passwd ("" when absent)
    group: str = ""
    # Each CRI mount's host path -> the path after resolving symlinks; a missing key = does not exist.
    mount_sources: Mapping[str, str] = field(default_factory=dict)
    # Image volumes: the host directory holding each one's image file system, by mount index.
    image_volume_sources: Mapping[int, str] = field(default_factory=dict)
    # Each CRI device's host path -> the device; a missing key = no such device.
    devices: Mapping[str, HostDevice] = field(default_factory=dict)
    # Every host device, given to privileged containers.
    host_devices: tuple[HostDevice, ...] = ()
    seccomp_profile_text: str = ""  # a Localhost profile's contents
    target_pid_ns_path: str = ""  # PID mode TARGET: the target container's /proc/<pid>/ns/pid
    oci_hooks: tuple[OciHook, ...] = ()  # from the hook directories; added when their conditions match
    cdi_edits: cdi.ResolvedEdits = field(default_factory=cdi.ResolvedEdits)
    # The host's device nodes that CDI edits leave the type or numbers of to the host, by host path.
    cdi_host_devices: Mapping[str, HostDevice] = field(default_factory=dict)


def stop_signal(config: ContainerConfig, image: ImageConfig) -> str:
    """CRI stop_signal, else the image's STOPSIGNAL, else SIGTERM; a number or name, normalised to a name
    (real-time signals between SIGRTMIN and SIGRTMAX as `SIGRTMIN+<n>`)."""
    for source, value in (("stop_signal", config.stop_signal), ("image STOPSIGNAL", image.stop_signal)):
        if not value:
            continue
        name = _signal_name(value)
        if name is None:
            raise InvalidArgument(f"{source}: unknown signal {value[:40]!r}")
        return name
    return "SIGTERM"


# SIGRTMIN+<n> and SIGRTMAX-<n>, as docker's STOPSIGNAL and the CRI's real-time signals spell them.
_REALTIME = re.compile(r"SIGRT(MIN\+|MAX-)([0-9]{1,2})")


def _signal_name(value: str) -> str | None:
    upper = value.upper()
    name = upper if upper.startswith("SIG") else "SIG" + upper
    if name in SIGNALS:
        return name
    number: int | None = None
    if value.isascii() and value.isdigit() and len(value) <= 2:
        number = int(value)
    elif (realtime := _REALTIME.fullmatch(name)) is not None:
        offset = int(realtime.group(2))
        number = SIGNALS["SIGRTMIN"] + offset if realtime.group(1) == "MIN+" else SIGNALS["SIGRTMAX"] - offset
    if number is None:
        return None
    if SIGNALS["SIGRTMIN"] < number < SIGNALS["SIGRTMAX"]:
        return f"SIGRTMIN+{number - SIGNALS['SIGRTMIN']}"
    return next((n for n, num in SIGNALS.items() if num == number), None)


# The kernel's cap on one argument or environment string, its NUL included (MAX_ARG_STRLEN): a longer one
# fails the container's exec with E2BIG, long after it was created.
MAX_ARG_STRLEN = 32 * 4096


def check_image_strings(image: ImageConfig) -> None:
    """Refuse image config strings no process can be started with: a NUL byte (the CRI request's strings
    are refused at the interceptor; the image's arrive here) or one past MAX_ARG_STRLEN."""
    for field_name, values in (("Env", image.env), ("Entrypoint", image.entrypoint), ("Cmd", image.cmd)):
        for index, value in enumerate(values):
            if "\0" in value:
                raise InvalidArgument(f"image config {field_name}[{index}]: holds a NUL byte")
            size = len(value.encode("utf-8", "surrogateescape")) + 1
            if size > MAX_ARG_STRLEN:
                raise InvalidArgument(
                    f"image config {field_name}[{index}]: {size} bytes, more than the {MAX_ARG_STRLEN} "
                    "the kernel passes to a process"
                )
    if "\0" in image.working_dir:
        raise InvalidArgument("image config WorkingDir: holds a NUL byte")


def process_args(config: ContainerConfig, image: ImageConfig) -> list[str]:
    """Command and args as the kubelet expects (the rules of docker's commit.go, kept by containerd)."""
    command, args = list(config.command), list(config.args)
    if not command:
        if not args:
            args = list(image.cmd)
        entrypoint = list(image.entrypoint or ())
        if entrypoint != [""]:
            command = entrypoint
    if not command and not args:
        raise InvalidArgument("command: no command specified and the image has no entrypoint or cmd")
    return command + args


def environment(config: ContainerConfig, image: ImageConfig, hostname: str, home: str) -> list[str]:
    """Image env, then CRI env (same key replaces); PATH, HOSTNAME and HOME filled in when absent."""
    merged: dict[str, str] = {}
    for entry in image.env:
        key, _, value = entry.partition("=")
        merged[key] = value
    for index, (key, value) in enumerate(config.envs):
        if not key or "=" in key:
            raise InvalidArgument(f"envs[{index}].key: {key!r} is not a variable name")
        merged[key] = value
    merged.setdefault("PATH", DEFAULT_PATH)
    if hostname:
        merged.setdefault("HOSTNAME", hostname)
    merged.setdefault("HOME", home)
    return [f"{k}={v}" for k, v in merged.items()]


def working_dir(config: ContainerConfig, image: ImageConfig) -> str:
    cwd = config.working_dir or image.working_dir or "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"working_dir: {cwd[:200]!r} is not an absolute path")
    check_path_length("working_dir", cwd)
    return cwd


def _check_container_path(field_name: str, path: str) -> None:
    if not path.startswith("/"):
        raise InvalidArgument(f"{field_name}: {path[:200]!r} is not an absolute path")
    if ".." in path.split("/"):
        raise InvalidArgument(f"{field_name}: {path[:200]!r} must not contain '..'")
    check_path_length(field_name, path)


def check_path_length(field_name: str, path: str) -> None:
    """NAME_MAX per component and PATH_MAX in all, in the bytes the kernel counts."""
    if len(path.encode()) > 4096 or any(len(p.encode()) > 255 for p in path.split("/")):
        raise InvalidArgument(f"{field_name}: a name longer than 255 bytes or a path longer than 4096")


# What runc lets a bind mount cover under /proc (lxcfs-style files); anything else there fails inside runc.
_PROC_MOUNTS_ALLOWED = frozenset(
    {
        "/proc/cpuinfo",
        "/proc/diskstats",
        "/proc/meminfo",
        "/proc/stat",
        "/proc/swaps",
        "/proc/uptime",
        "/proc/loadavg",
        "/proc/slabinfo",
        "/proc/net/dev",
        "/proc/sys/kernel/ns_last_pid",
    }
)


def nested_mount_points(mounts: list[dict[str, Any]]) -> list[str]:
    """Host paths runc will make for mounts whose destination lies inside an earlier bind mount: mounting
    host dir H at /data and K at /data/sub/x makes H/sub and H/sub/x on the host. Outermost first."""
    made: list[str] = []
    for index, mount in enumerate(mounts):
        destination = _normal(mount["destination"])
        for earlier in reversed(mounts[:index]):
            outer = _normal(earlier["destination"])
            if earlier.get("type") != "bind" or not destination.startswith(outer.rstrip("/") + "/"):
                continue
            path = str(earlier["source"]).rstrip("/")
            for part in destination[len(outer.rstrip("/")) + 1 :].split("/"):
                path += "/" + part
                if path not in made:
                    made.append(path)
            break
    return made


def _normal(path: str) -> str:
    return "/" + "/".join(p for p in path.split("/") if p not in ("", "."))


def check_mount_destinations(mounts: tuple[Mount, ...]) -> None:
    """Before anything is made for a container: every mount's destination is one runc can use."""
    for index, mount in enumerate(mounts):
        _check_mount_destination(f"mounts[{index}].container_path", mount.container_path)


def _check_mount_destination(field_name: str, path: str) -> None:
    """A mount may not cover the container's root (runc would then build /dev, /proc... inside the host
    directory) nor /proc, which runc refuses only after it has started working on the host."""
    _check_container_path(field_name, path)
    normal = "/" + "/".join(p for p in path.split("/") if p not in ("", "."))
    if normal == "/":
        raise InvalidArgument(f"{field_name}: {path!r} would cover the container's root file system")
    if (normal == "/proc" or normal.startswith("/proc/")) and normal not in _PROC_MOUNTS_ALLOWED:
        raise InvalidArgument(f"{field_name}: {path!r} is in /proc, where mounts are not allowed")


def _default_mounts(privileged: bool) -> list[dict[str, Any]]:
    sys_mode = "rw" if privileged else "ro"
    return [
        {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", sys_mode]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", sys_mode]},
    ]  # fmt: skip


def _sandbox_mounts(inputs: SpecInputs) -> list[dict[str, Any]]:
    """/dev/shm and the sandbox's hostname, hosts and resolv.conf files."""
    sandbox, ns = inputs.sandbox, namespace_options(inputs)
    mounts = []
    if ns.ipc is NamespaceMode.NODE:
        mounts.append(
            {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm", "options": ["rbind", "rw"]}
        )
    elif sandbox.shm_path:
        mounts.append({"destination": "/dev/shm", "type": "bind", "source": sandbox.shm_path,
                       "options": ["rbind", "rw", "nosuid", "nodev", "noexec"]})  # fmt: skip
    else:
        mounts.append({"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})  # fmt: skip
    mode = "ro" if inputs.config.security.readonly_rootfs else "rw"
    for destination, source in (
        ("/etc/hostname", sandbox.hostname_path),
        ("/etc/hosts", sandbox.hosts_path),
        ("/etc/resolv.conf", sandbox.resolv_conf_path),
    ):
        if source:
            mounts.append({"destination": destination, "type": "bind", "source": source,
                           "options": ["rbind", "rprivate", mode]})  # fmt: skip
    return mounts


def _image_volume_mount(index: int, mount: Mount, sources: Mapping[int, str]) -> dict[str, Any]:
    """An image's file system, read-only but not noexec (its binaries may be run), never propagated."""
    where = f"mounts[{index}]"
    _check_mount_destination(f"{where}.container_path", mount.container_path)
    if not mount.readonly:
        raise InvalidArgument(f"{where}.readonly: an image volume must be read-only")
    source = sources.get(index)
    if source is None:
        raise InvalidArgument(f"{where}.image: {mount.image!r} is not mounted")
    return {"destination": mount.container_path, "type": "bind", "source": source,
            "options": ["rbind", "rprivate", "ro", "nosuid", "nodev"]}  # fmt: skip


def _cri_mount(index: int, mount: Mount, sources: Mapping[str, str]) -> dict[str, Any]:
    where = f"mounts[{index}]"
    _check_mount_destination(f"{where}.container_path", mount.container_path)
    if not mount.host_path:
        raise InvalidArgument(f"{where}.host_path: empty")
    source = sources.get(mount.host_path)
    if source is None:
        raise InvalidArgument(f"{where}.host_path: {mount.host_path!r} does not exist")
    options = ["rbind", mount.propagation.value, "ro" if mount.readonly else "rw"]
    if mount.recursive_read_only:
        if not mount.readonly:
            raise InvalidArgument(f"{where}.recursive_read_only: needs readonly")
        if mount.propagation is not Propagation.PRIVATE:
            raise InvalidArgument(f"{where}.recursive_read_only: needs propagation PRIVATE")
        options.append("rro")
    return {"destination": mount.container_path, "type": "bind", "source": source, "options": options}


def _rootfs_propagation(mounts: tuple[Mount, ...]) -> str:
    """The container's / must be shared (or slave) for mounts with that propagation to work."""
    modes = {m.propagation for m in mounts}
    if Propagation.BIDIRECTIONAL in modes:
        return "rshared"
    if Propagation.HOST_TO_CONTAINER in modes:
        return "rslave"
    return ""


def id_mappings(mappings: tuple[IdMapping, ...]) -> list[dict[str, int]]:
    """CRI mappings in the OCI spec's form (linux.uidMappings, and a mount's uidMappings)."""
    return [{"containerID": m.container_id, "hostID": m.host_id, "size": m.length} for m in mappings]


def _idmapped(mount: dict[str, Any], userns: UserNamespace | None) -> dict[str, Any]:
    """A volume of a pod in a user namespace is idmapped with the pod's mappings (runtime-spec 1.1 mount
    uidMappings/gidMappings): its files keep their owners as the containers see them, root's stay root's."""
    if userns is None:
        return mount
    return {**mount, "uidMappings": id_mappings(userns.uids), "gidMappings": id_mappings(userns.gids)}


def _mounts(inputs: SpecInputs) -> list[dict[str, Any]]:
    # An image volume's layers are idmapped already (as the rootfs's); a host path is idmapped here.
    userns = inputs.sandbox.user_namespace
    cri = [
        _image_volume_mount(i, m, inputs.image_volume_sources)
        if m.image
        else _idmapped(_cri_mount(i, m, inputs.mount_sources), userns)
        for i, m in enumerate(inputs.config.mounts)
    ]
    taken = {m["destination"].rstrip("/") or "/" for m in cri}
    defaults = _default_mounts(inputs.config.security.privileged) + _sandbox_mounts(inputs)
    return [m for m in defaults if m["destination"] not in taken] + cri


def namespace_options(inputs: SpecInputs) -> NamespaceOptions:
    """The container's namespace options with the pod's network and IPC modes, which it cannot leave: a
    container of a host-network or host-IPC pod runs in the host's, whatever it asks (cri-o and containerd
    do the same; the kubelet copies the pod's modes, but other clients, critest among them, do not)."""
    ns, sandbox = inputs.config.security.namespace_options, inputs.sandbox
    if sandbox.host_network:
        ns = replace(ns, network=NamespaceMode.NODE)
    if sandbox.host_ipc:
        ns = replace(ns, ipc=NamespaceMode.NODE)
    return ns


def _namespaces(inputs: SpecInputs) -> list[dict[str, str]]:
    ns, sandbox = namespace_options(inputs), inputs.sandbox
    result = [{"type": "mount"}]
    if ns.network is NamespaceMode.POD:
        if not sandbox.netns_path:
            raise InvalidArgument("namespace_options.network: POD, but the sandbox has no network namespace")
        result.append({"type": "network", "path": sandbox.netns_path})
        if sandbox.uts_ns_path:
            result.append({"type": "uts", "path": sandbox.uts_ns_path})
    elif ns.network is not NamespaceMode.NODE:
        raise InvalidArgument(f"namespace_options.network: {ns.network.name} is not supported (POD or NODE)")
    if ns.ipc is NamespaceMode.POD:
        if not sandbox.ipc_ns_path:
            raise InvalidArgument("namespace_options.ipc: POD, but the sandbox has no IPC namespace")
        result.append({"type": "ipc", "path": sandbox.ipc_ns_path})
    elif ns.ipc is not NamespaceMode.NODE:
        raise InvalidArgument(f"namespace_options.ipc: {ns.ipc.name} is not supported (POD or NODE)")
    if ns.pid is NamespaceMode.POD:
        if not sandbox.pid_ns_path:
            raise InvalidArgument("namespace_options.pid: POD, but the sandbox has no PID namespace")
        result.append({"type": "pid", "path": sandbox.pid_ns_path})
    elif ns.pid is NamespaceMode.CONTAINER:
        result.append({"type": "pid"})
    elif ns.pid is NamespaceMode.TARGET:
        if not ns.target_id or not inputs.target_pid_ns_path:
            raise InvalidArgument(
                "namespace_options.target_id: PID mode TARGET needs a running target container"
            )
        result.append({"type": "pid", "path": inputs.target_pid_ns_path})
    check_container_user_namespace(ns.user_namespace, sandbox.user_namespace)
    if sandbox.user_namespace is not None:
        if not sandbox.userns_path:
            raise InvalidArgument(
                "namespace_options.userns_options: POD, but the sandbox has no user namespace"
            )
        result.insert(0, {"type": "user", "path": sandbox.userns_path})
    if inputs.host.cgroup_v2:
        result.append({"type": "cgroup"})
    return result


def _sysctls(inputs: SpecInputs) -> dict[str, str]:
    """Pod sysctls; only namespaced ones, and only for namespaces the pod does not share with the host."""
    ns = namespace_options(inputs)
    result = {}
    for raw_key, value in inputs.sandbox.sysctls:
        key = raw_key.replace("/", ".") if "/" in raw_key and "." not in raw_key else raw_key
        if key in _IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if ns.ipc is NamespaceMode.NODE:
                raise InvalidArgument(f"sysctls: {key} needs a pod IPC namespace, not the host's")
        elif key.startswith("net."):
            if ns.network is NamespaceMode.NODE:
                raise InvalidArgument(f"sysctls: {key} needs a pod network namespace, not the host's")
        elif key in _UTS_SYSCTLS:
            if ns.network is NamespaceMode.NODE:
                raise InvalidArgument(f"sysctls: {key} needs a pod UTS namespace, not the host's")
        else:
            raise InvalidArgument(f"sysctls: {key} is not a namespaced sysctl")
        result[key] = value
    return result


def check_cpuset(name: str, value: str, highest: int) -> None:
    """A cpuset list (`0-3,5`): ranges in order, below the kernel's largest CPU or node number."""
    if not value:
        return
    if len(value) > 4096 or not _CPUSET.fullmatch(value):
        raise InvalidArgument(f"{name}: {value[:80]!r} is not a CPU/node list like 0-3,5")
    for part in value.split(","):
        first, _, last = part.partition("-")
        low, high = int(first), int(last or first)
        if low > high or high > highest:
            raise InvalidArgument(f"{name}: {part!r} is not a range within 0-{highest}")


def clamp_oom_score_adj(requested: int, host: HostFacts) -> int:
    if not -1000 <= requested <= 1000:
        raise InvalidArgument(f"oom_score_adj: {requested} is outside -1000..1000")
    return max(requested, host.min_oom_score_adj)


def settable_hugepage_sizes(hugepages: HugePages) -> frozenset[str]:
    """The page sizes whose hugetlb limits the OCI runtime (and pycrio's cgroup driver) can set."""
    return hugepages.page_sizes() if hugepages.controller_available() else frozenset()


def resources_to_oci(resources: Resources, host: HostFacts) -> dict[str, Any]:
    """CRI LinuxContainerResources as OCI `linux.resources` (without devices); also used for updates."""
    r = resources
    for name in ("cpu_shares", "memory_limit_in_bytes"):
        if getattr(r, name) < 0:
            raise InvalidArgument(f"{name}: {getattr(r, name)} is negative")
    if r.cpu_period and not 1000 <= r.cpu_period <= 1_000_000:
        raise InvalidArgument(f"cpu_period: {r.cpu_period} is outside 1000..1000000 microseconds")
    if r.cpu_quota < -1 or 0 < r.cpu_quota < 1000 or r.cpu_quota > MAX_CPU_QUOTA:
        raise InvalidArgument(f"cpu_quota: {r.cpu_quota} must be -1, 0 or 1000..{MAX_CPU_QUOTA} microseconds")
    if r.cpu_shares > 262144:
        raise InvalidArgument(f"cpu_shares: {r.cpu_shares} is above 262144")
    if 0 < r.memory_limit_in_bytes < MIN_MEMORY_LIMIT:
        raise InvalidArgument(
            f"memory_limit_in_bytes: {r.memory_limit_in_bytes} is too low; "
            f"it must be at least {MIN_MEMORY_LIMIT}"
        )
    for name, highest in (("cpuset_cpus", MAX_CPUS - 1), ("cpuset_mems", MAX_NUMA_NODES - 1)):
        check_cpuset(name, getattr(r, name), highest)
    cpu: dict[str, Any] = {}
    if r.cpu_shares:
        cpu["shares"] = r.cpu_shares
    if r.cpu_quota:
        cpu["quota"] = r.cpu_quota
    if r.cpu_period:
        cpu["period"] = r.cpu_period
    if r.cpuset_cpus:
        cpu["cpus"] = r.cpuset_cpus
    if r.cpuset_mems:
        cpu["mems"] = r.cpuset_mems
    memory: dict[str, Any] = {}
    if r.memory_limit_in_bytes:
        memory["limit"] = r.memory_limit_in_bytes
        swap = r.memory_swap_limit_in_bytes
        if swap and swap != -1 and swap < r.memory_limit_in_bytes:
            raise InvalidArgument(f"memory_swap_limit_in_bytes: {swap} is below memory_limit_in_bytes")
        if swap:
            memory["swap"] = swap
        elif host.swap_accounting:
            memory["swap"] = r.memory_limit_in_bytes  # no swap beyond the limit, as the kubelet means
    elif r.memory_swap_limit_in_bytes:
        raise InvalidArgument("memory_swap_limit_in_bytes: needs memory_limit_in_bytes")
    result: dict[str, Any] = {}
    if cpu:
        result["cpu"] = cpu
    if memory:
        result["memory"] = memory
    hugepages = []
    for index, limit in enumerate(r.hugepage_limits):
        if not PAGE_SIZE.match(limit.page_size):
            raise InvalidArgument(f"hugepage_limits[{index}].page_size: {limit.page_size!r} is not like 2MB")
        if limit.limit < 0:
            raise InvalidArgument(f"hugepage_limits[{index}].limit: {limit.limit} is negative")
        if limit.page_size in host.hugepage_sizes:
            hugepages.append({"pageSize": limit.page_size, "limit": limit.limit})
        else:
            # The kubelet names every size the node has; runc would fail the container on one it cannot set.
            _log.debug("hugepage limit left out: no hugetlb controller or page size on this host",
                       page_size=limit.page_size, limit=limit.limit)  # fmt: skip
    if hugepages:
        result["hugepageLimits"] = hugepages
    if r.unified:
        if not host.cgroup_v2:
            raise InvalidArgument("unified: cgroup v2 settings on a cgroup v1 host")
        result["unified"] = dict(r.unified)
    return result


def cgroups_path(container_id: str, sandbox: SandboxFacts, host: HostFacts) -> str:
    if host.cgroup_driver == "systemd":
        # runc and crun want the slice's unit name; the sandbox knows the slice's expanded path.
        parent = sandbox.cgroup_parent.rstrip("/").rsplit("/", 1)[-1] or "system.slice"
        return f"{parent}:pycrio:{container_id}"
    parent = sandbox.cgroup_parent or "/pycrio"
    return f"{parent.rstrip('/')}/pycrio-{container_id}"


def _devices(inputs: SpecInputs) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(linux.devices, device cgroup rules). runc adds the standard /dev/null etc. by itself."""
    nodes: list[dict[str, Any]] = []
    rules: list[dict[str, Any]] = [{"allow": False, "access": "rwm"}]
    if inputs.config.security.privileged:
        rules = [{"allow": True, "access": "rwm"}]
        for dev in inputs.host_devices:
            nodes.append(_device_node(dev.path, dev))
    for index, device in enumerate(inputs.config.devices):
        where = f"devices[{index}]"
        _check_container_path(f"{where}.container_path", device.container_path)
        permissions = device.permissions or "rwm"
        if set(permissions) - set("rwm"):
            raise InvalidArgument(f"{where}.permissions: {permissions!r} may only hold r, w and m")
        found = inputs.devices.get(device.host_path)
        if found is None:
            raise InvalidArgument(f"{where}.host_path: {device.host_path!r} is not a device")
        nodes = [n for n in nodes if n["path"] != device.container_path]
        nodes.append(_device_node(device.container_path, found))
        rules.append({"allow": True, "type": found.type, "major": found.major, "minor": found.minor,
                      "access": permissions})  # fmt: skip
    return nodes, rules


def _device_node(path: str, dev: HostDevice) -> dict[str, Any]:
    return {"path": path, "type": dev.type, "major": dev.major, "minor": dev.minor,
            "fileMode": dev.file_mode, "uid": dev.uid, "gid": dev.gid}  # fmt: skip


def _annotations(inputs: SpecInputs) -> dict[str, str]:
    sandbox = inputs.sandbox
    annotations = dict(inputs.config.annotations)
    annotations.update(
        {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": inputs.config.name,
            "io.kubernetes.cri.sandbox-id": sandbox.id,
            "io.kubernetes.cri.sandbox-name": sandbox.name,
            "io.kubernetes.cri.sandbox-namespace": sandbox.namespace,
            "io.kubernetes.cri.sandbox-uid": sandbox.uid,
            "io.kubernetes.cri.image-name": inputs.image_name,
        }
    )
    return annotations


def _seccomp(inputs: SpecInputs, caps: CapabilitySets) -> dict[str, Any] | None:
    choice = seccomp.choose_profile(inputs.config.security, inputs.host.seccomp_default_when_empty)
    if choice.kind is None:
        return None
    if choice.localhost_path:
        if not inputs.seccomp_profile_text:
            raise InvalidArgument(f"seccomp.localhost_ref: {choice.localhost_path} is empty or missing")
        return seccomp.from_profile_text(
            inputs.seccomp_profile_text, caps.bounding, inputs.host.machine, choice.localhost_path
        )
    return seccomp.runtime_default(caps.bounding, inputs.host.machine)


def build_spec(inputs: SpecInputs) -> dict[str, Any]:
    """The complete config.json for runc/crun."""
    config, security = inputs.config, inputs.config.security
    if security.privileged and not inputs.sandbox.privileged:
        raise InvalidArgument("privileged: the pod sandbox is not privileged")
    user: ResolvedUser = resolve_user(security, inputs.image.user, inputs.passwd, inputs.group)
    caps = container_capabilities(
        security.privileged,
        security.add_capabilities,
        security.drop_capabilities,
        security.add_ambient_capabilities,
        inputs.host.bounding_capabilities,
    )
    hostname = inputs.sandbox.hostname
    process: dict[str, Any] = {
        "terminal": config.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "args": process_args(config, inputs.image),
        "env": environment(config, inputs.image, hostname, user.home),
        "cwd": working_dir(config, inputs.image),
        "capabilities": caps.to_oci(),
        "noNewPrivileges": security.no_new_privs,
        "oomScoreAdj": clamp_oom_score_adj(config.resources.oom_score_adj, inputs.host),
    }
    resources = resources_to_oci(config.resources, inputs.host)
    device_nodes, device_rules = _devices(inputs)
    resources["devices"] = device_rules
    linux: dict[str, Any] = {
        "namespaces": _namespaces(inputs),
        "resources": resources,
        "cgroupsPath": cgroups_path(inputs.container_id, inputs.sandbox, inputs.host),
        "sysctl": _sysctls(inputs),
    }
    if device_nodes:
        linux["devices"] = device_nodes
    userns = inputs.sandbox.user_namespace
    if userns is not None:
        linux["uidMappings"] = id_mappings(userns.uids)
        linux["gidMappings"] = id_mappings(userns.gids)
    if not security.privileged:
        linux["maskedPaths"] = list(security.masked_paths or DEFAULT_MASKED_PATHS)
        linux["readonlyPaths"] = list(security.readonly_paths or DEFAULT_READONLY_PATHS)
    profile = _seccomp(inputs, caps)
    if profile is not None:
        linux["seccomp"] = profile
    propagation = _rootfs_propagation(config.mounts)
    if propagation:
        linux["rootfsPropagation"] = propagation
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": inputs.rootfs, "readonly": security.readonly_rootfs},
        "mounts": _mounts(inputs),
        "annotations": _annotations(inputs),
        "linux": linux,
    }
    if any(n.get("type") == "uts" for n in linux["namespaces"]) and hostname:
        spec["hostname"] = hostname
    # Extensions edit the finished spec, in cri-o's order: OCI hooks (matched against the container's and
    # then the pod's annotations, and whether it has CRI mounts), then CDI devices.
    hook_annotations = {**config.annotations, **dict(inputs.sandbox.annotations)}
    add_hooks(spec, inputs.oci_hooks, hook_annotations, bool(config.mounts))
    cdi.apply_edits(spec, inputs.cdi_edits, inputs.cdi_host_devices)
    return spec

"""What a container is asked to be: the CRI ContainerConfig, the image config and the sandbox's facts.

These are the domain's own dataclasses: the CRI adapter converts protobuf into them, the images and pods
areas supply the image config and the sandbox facts. The OCI spec builder (oci_spec.py) reads only these.
"""

import enum
from dataclasses import dataclass, field

from domain.id_mappings import UserNamespace
from domain.image_config import ImageConfig

__all__ = ["ImageConfig"]  # the images area's, re-exported: the image config a container is made from


class Propagation(enum.Enum):
    """CRI MountPropagation, with the OCI option each one becomes."""

    PRIVATE = "rprivate"
    HOST_TO_CONTAINER = "rslave"
    BIDIRECTIONAL = "rshared"


class NamespaceMode(enum.Enum):
    """CRI NamespaceMode (same numbering as the proto)."""

    POD = 0
    CONTAINER = 1
    NODE = 2
    TARGET = 3


class ProfileType(enum.Enum):
    """CRI SecurityProfile.ProfileType (same numbering as the proto)."""

    RUNTIME_DEFAULT = 0
    UNCONFINED = 1
    LOCALHOST = 2


class SupplementalGroupsPolicy(enum.Enum):
    MERGE = 0
    STRICT = 1


@dataclass(frozen=True)
class Mount:
    container_path: str
    host_path: str
    readonly: bool = False
    propagation: Propagation = Propagation.PRIVATE
    recursive_read_only: bool = False
    selinux_relabel: bool = False
    # An image volume (KEP-4639): the named image's file system, read-only, instead of host_path.
    image: str = ""
    image_sub_path: str = ""  # a directory inside that image to mount instead of its root
    # The rest of the image volume's ImageSpec, answered back in ContainerStatus.mounts as containerd does.
    user_specified_image: str = ""
    image_annotations: dict[str, str] = field(default_factory=dict)
    image_runtime_handler: str = ""


@dataclass(frozen=True)
class Device:
    container_path: str
    host_path: str
    permissions: str = "rwm"


@dataclass(frozen=True)
class HugepageLimit:
    page_size: str  # "2MB", "1GB"
    limit: int


@dataclass(frozen=True)
class Resources:
    """CRI LinuxContainerResources; 0 / empty means "not set", as in the proto."""

    cpu_period: int = 0
    cpu_quota: int = 0
    cpu_shares: int = 0
    memory_limit_in_bytes: int = 0
    memory_swap_limit_in_bytes: int = 0
    oom_score_adj: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    hugepage_limits: tuple[HugepageLimit, ...] = ()
    unified: tuple[tuple[str, str], ...] = ()

    def updated_by(self, change: "Resources") -> "Resources":
        """These resources after an UpdateContainerResources carrying `change`: what it leaves unset is kept,
        as containerd and cri-o keep it. The kubelet's CPU manager sends `cpuset_cpus` alone every few
        seconds; the limits must survive that. Memory and swap go together (swap follows the new limit when
        the change names none); hugepage limits and unified keys are replaced one by one."""
        memory = (change.memory_limit_in_bytes, change.memory_swap_limit_in_bytes)
        if not change.memory_limit_in_bytes:  # a swap limit alone is refused before this
            memory = (self.memory_limit_in_bytes, self.memory_swap_limit_in_bytes)
        pages = {limit.page_size: limit for limit in self.hugepage_limits}
        pages.update({limit.page_size: limit for limit in change.hugepage_limits})
        return Resources(
            cpu_period=change.cpu_period or self.cpu_period,
            cpu_quota=change.cpu_quota or self.cpu_quota,
            cpu_shares=change.cpu_shares or self.cpu_shares,
            memory_limit_in_bytes=memory[0],
            memory_swap_limit_in_bytes=memory[1],
            oom_score_adj=change.oom_score_adj or self.oom_score_adj,
            cpuset_cpus=change.cpuset_cpus or self.cpuset_cpus,
            cpuset_mems=change.cpuset_mems or self.cpuset_mems,
            hugepage_limits=tuple(pages.values()),
            unified=tuple({**dict(self.unified), **dict(change.unified)}.items()),
        )


@dataclass(frozen=True)
class SecurityProfile:
    profile_type: ProfileType = ProfileType.RUNTIME_DEFAULT
    localhost_ref: str = ""


@dataclass(frozen=True)
class NamespaceOptions:
    network: NamespaceMode = NamespaceMode.POD
    pid: NamespaceMode = NamespaceMode.CONTAINER
    ipc: NamespaceMode = NamespaceMode.POD
    target_id: str = ""
    # userns_options: mode POD with the pod's mappings (None: mode NODE, the host's user namespace).
    user_namespace: UserNamespace | None = None


@dataclass(frozen=True)
class SecurityContext:
    """CRI LinuxContainerSecurityContext. None for an optional field means the kubelet did not set it."""

    privileged: bool = False
    add_capabilities: tuple[str, ...] = ()
    drop_capabilities: tuple[str, ...] = ()
    add_ambient_capabilities: tuple[str, ...] = ()
    namespace_options: NamespaceOptions = field(default_factory=NamespaceOptions)
    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_username: str = ""
    readonly_rootfs: bool = False
    supplemental_groups: tuple[int, ...] = ()
    supplemental_groups_policy: SupplementalGroupsPolicy = SupplementalGroupsPolicy.MERGE
    no_new_privs: bool = False
    masked_paths: tuple[str, ...] = ()
    readonly_paths: tuple[str, ...] = ()
    # None: the kubelet sent no SecurityProfile; the deprecated path string is then consulted.
    seccomp: SecurityProfile | None = None
    seccomp_profile_path: str = ""
    apparmor: SecurityProfile | None = None


@dataclass(frozen=True)
class ContainerConfig:
    """The CRI ContainerConfig (Linux part), as the domain sees it."""

    name: str
    attempt: int = 0
    image: str = ""
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    working_dir: str = ""
    envs: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    devices: tuple[Device, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    log_path: str = ""
    stdin: bool = False
    stdin_once: bool = False
    tty: bool = False
    resources: Resources = field(default_factory=Resources)
    security: SecurityContext = field(default_factory=SecurityContext)
    stop_signal: str = ""  # "SIGTERM" etc.; "" = runtime default
    cdi_devices: tuple[str, ...] = ()  # fully qualified CDI device names (vendor.com/class=name)
    # The rest of the request's ImageSpec, answered back in ContainerStatus and ListContainers as containerd
    # does: the kubelet puts the pulled image's id in `image` and what the pod spec named here.
    user_specified_image: str = ""
    image_annotations: dict[str, str] = field(default_factory=dict)
    image_runtime_handler: str = ""


@dataclass(frozen=True)
class SandboxFacts:
    """What a container needs from its pod sandbox. Paths are host paths; "" means the sandbox has none."""

    id: str
    name: str = ""
    namespace: str = ""
    uid: str = ""
    hostname: str = ""
    netns_path: str = ""  # "" with host network
    ipc_ns_path: str = ""
    uts_ns_path: str = ""
    pid_ns_path: str = ""  # the infra process's pid namespace (PID mode POD)
    hostname_path: str = ""
    hosts_path: str = ""
    resolv_conf_path: str = ""
    shm_path: str = ""
    cgroup_parent: str = ""
    runtime_handler: str = ""
    log_directory: str = ""
    privileged: bool = False
    sysctls: tuple[tuple[str, str], ...] = ()
    host_network: bool = False
    host_ipc: bool = False
    annotations: tuple[tuple[str, str], ...] = ()  # the pod's (OCI hooks match on them)
    # The pod's user namespace (pinned path and mappings); "" and None when it runs in the host's.
    userns_path: str = ""
    user_namespace: UserNamespace | None = None

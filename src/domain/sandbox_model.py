"""A pod sandbox as pycrio keeps it: the request it was made from, what was made for it, and its state.

Lifecycle: CREATING (name reserved, resources being made; never listed) -> READY -> NOTREADY (stopped) ->
removed (the record is deleted). The network has its own phase so that a crash during CNI ADD is undone by
DEL on restart: ADDING is persisted before ADD runs.
"""

import enum
from dataclasses import asdict, dataclass, field
from typing import Any

from domain.container_config import NamespaceMode, Resources
from domain.id_mappings import UserNamespace
from domain.pod_resources import resources_from_record
from ports.infra import InfraProcess
from ports.namespaces import PodNamespaces
from ports.network import (
    DnsSettings,
    NetworkAttachment,
    PodAddress,
    PodInterface,
    PortMapping,
)
from ports.pod_files import PodFilePaths

__all__ = [
    "NamespaceMode",
    "NamespaceOptions",
    "NetworkPhase",
    "PodSandbox",
    "SandboxConfig",
    "SandboxMetadata",
    "SandboxState",
]


class SandboxState(enum.Enum):
    CREATING = "CREATING"
    READY = "READY"
    NOTREADY = "NOTREADY"


class NetworkPhase(enum.Enum):
    NONE = "NONE"  # nothing asked of the network (yet, or host network)
    ADDING = "ADDING"  # ADD started: a crash now must be undone with DEL
    ATTACHED = "ATTACHED"
    DETACHED = "DETACHED"  # DEL succeeded


@dataclass(frozen=True)
class SandboxMetadata:
    name: str
    uid: str
    namespace: str
    attempt: int = 0

    @property
    def reservation_key(self) -> str:
        """The name a sandbox reserves, as cri-o builds it (k8s_POD_name_namespace_uid_attempt)."""
        return f"k8s_POD_{self.name}_{self.namespace}_{self.uid}_{self.attempt}"


@dataclass(frozen=True)
class NamespaceOptions:
    network: NamespaceMode = NamespaceMode.POD
    pid: NamespaceMode = NamespaceMode.POD
    ipc: NamespaceMode = NamespaceMode.POD
    target_id: str = ""

    @property
    def host_network(self) -> bool:
        return self.network == NamespaceMode.NODE

    @property
    def host_pid(self) -> bool:
        return self.pid == NamespaceMode.NODE

    @property
    def host_ipc(self) -> bool:
        return self.ipc == NamespaceMode.NODE


@dataclass(frozen=True)
class SandboxConfig:
    metadata: SandboxMetadata
    hostname: str = ""
    log_directory: str = ""
    dns: DnsSettings | None = None
    port_mappings: list[PortMapping] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    cgroup_parent: str = ""
    namespace_options: NamespaceOptions = field(default_factory=NamespaceOptions)
    sysctls: dict[str, str] = field(default_factory=dict)
    privileged: bool = False
    # Recorded as the CRI sent them (LinuxContainerResources fields), for the containers and for stats.
    # UpdatePodSandboxResources (and RunPodSandbox): the runtime class's overhead, the containers' sum.
    overhead: Resources = field(default_factory=Resources)
    resources: Resources = field(default_factory=Resources)
    # The pod's user namespace (userns_options mode POD); None: the host's.
    user_namespace: UserNamespace | None = None


@dataclass
class PodSandbox:
    id: str
    config: SandboxConfig
    # As the kubelet named it ("" for the default) and the OCI runtime it resolved to.
    runtime_handler: str
    oci_runtime: str
    created_at: int  # ns since the epoch
    state: SandboxState = SandboxState.CREATING
    hostname: str = ""
    namespaces: PodNamespaces = field(default_factory=PodNamespaces)
    infra: InfraProcess | None = None
    network_phase: NetworkPhase = NetworkPhase.NONE
    attachment: NetworkAttachment | None = None
    files: PodFilePaths | None = None
    cgroup_driver: str = "cgroupfs"
    cgroup_parent: str = ""  # the parent as a path
    cgroup_path: str = ""  # the infra process's cgroup
    # The cgroup directories that are pycrio's and are removed with the pod, per hierarchy, outermost first:
    # what it made for this pod, and ancestors another pod of this daemon made and shares with it. Written
    # before the directories are made. The kubelet's QoS and pod cgroups are never in it.
    cgroup_dirs: dict[str, list[str]] = field(default_factory=dict)
    # NRI plugins heard StopPodSandbox (once per pod, also across restarts: a pod in a plugin's
    # Synchronize does not say whether it is stopped).
    nri_stop_reported: bool = False
    # The kernel's boot id when the pod was made ("" in records from before it was kept): pids, namespaces
    # and mounts of another boot are gone, and a pid of it may name an unrelated process now.
    boot_id: str = ""

    @property
    def name(self) -> str:
        return self.config.metadata.reservation_key

    @property
    def ips(self) -> list[str]:
        return self.attachment.ips if self.attachment else []

    @property
    def pid_namespace(self) -> str:
        """Path of the PID namespace the pod's containers share; "" when they do not share one."""
        if self.config.namespace_options.pid != NamespaceMode.POD or self.infra is None:
            return ""
        return self.infra.pid_namespace

    def to_document(self) -> dict[str, Any]:
        document: dict[str, Any] = _encode(asdict(self))
        return document

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "PodSandbox":
        config = doc["config"]
        ns_opts = config["namespace_options"]
        dns = config.get("dns")
        sandbox_config = SandboxConfig(
            metadata=SandboxMetadata(**config["metadata"]),
            hostname=config["hostname"],
            log_directory=config["log_directory"],
            dns=DnsSettings(**dns) if dns is not None else None,
            port_mappings=[PortMapping(**p) for p in config["port_mappings"]],
            labels=dict(config["labels"]),
            annotations=dict(config["annotations"]),
            cgroup_parent=config["cgroup_parent"],
            namespace_options=NamespaceOptions(
                network=NamespaceMode[ns_opts["network"]],
                pid=NamespaceMode[ns_opts["pid"]],
                ipc=NamespaceMode[ns_opts["ipc"]],
                target_id=ns_opts["target_id"],
            ),
            sysctls=dict(config["sysctls"]),
            privileged=config["privileged"],
            overhead=resources_from_record(config["overhead"]),
            resources=resources_from_record(config["resources"]),
            user_namespace=_user_namespace(config.get("user_namespace")),
        )
        attachment = doc.get("attachment")
        infra = doc.get("infra")
        files = doc.get("files")
        return cls(
            id=doc["id"],
            config=sandbox_config,
            runtime_handler=doc["runtime_handler"],
            oci_runtime=doc["oci_runtime"],
            created_at=doc["created_at"],
            state=SandboxState(doc["state"]),
            hostname=doc["hostname"],
            namespaces=PodNamespaces(**doc["namespaces"]),
            infra=InfraProcess(**infra) if infra else None,
            network_phase=NetworkPhase(doc["network_phase"]),
            attachment=(
                NetworkAttachment(
                    network_name=attachment["network_name"],
                    addresses=[PodAddress(**a) for a in attachment["addresses"]],
                    interfaces=[PodInterface(**i) for i in attachment["interfaces"]],
                    undo=attachment["undo"],
                )
                if attachment
                else None
            ),
            files=PodFilePaths(**files) if files else None,
            cgroup_driver=doc["cgroup_driver"],
            cgroup_parent=doc["cgroup_parent"],
            cgroup_path=doc["cgroup_path"],
            cgroup_dirs={h: list(dirs) for h, dirs in doc.get("cgroup_dirs", {}).items()},
            nri_stop_reported=bool(doc.get("nri_stop_reported", False)),
            boot_id=str(doc.get("boot_id", "")),
        )

    def copy(self) -> "PodSandbox":
        """A shallow copy, as dataclasses.replace makes, for a third of its cost (lists copy every pod)."""
        duplicate = object.__new__(PodSandbox)
        duplicate.__dict__.update(self.__dict__)
        return duplicate


def _encode(value: Any) -> Any:
    """Enums by name (the only form records have ever had: until NamespaceMode was shared with the
    containers area, every enum here had its name as its value)."""
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _user_namespace(record: object) -> UserNamespace | None:
    """Records of daemons before user namespaces hold a bool (always False: the pod was refused)."""
    return UserNamespace.from_record(record) if isinstance(record, dict) else None

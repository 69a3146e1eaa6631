"""What the runtime says about itself: version, readiness conditions, node-level runtime config."""

import threading
from dataclasses import dataclass, field
from typing import Literal

from ports.network import Network
from ports.state_store import StateStore

RUNTIME_NAME = "pycrio"
RUNTIME_API_VERSION = "v1"
# The CRI "version" field carries the kubelet runtime API version, which has been 0.1.0 since v1alpha1.
KUBELET_API_VERSION = "0.1.0"

RUNTIME_READY = "RuntimeReady"
NETWORK_READY = "NetworkReady"

_STATE_KIND = "runtime"
_STATE_KEY = "runtime-config"


@dataclass(frozen=True)
class VersionInfo:
    version: str
    runtime_name: str
    runtime_version: str
    runtime_api_version: str


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class HandlerFeatures:
    name: str
    recursive_read_only_mounts: bool = False
    user_namespaces: bool = False
    # Why a pod in a user namespace is refused on this handler ("" when user_namespaces).
    user_namespaces_refusal: str = ""


@dataclass(frozen=True)
class RuntimeStatus:
    conditions: list[Condition]
    handlers: list[HandlerFeatures] = field(default_factory=list)
    supplemental_groups_policy: bool = False


@dataclass(eq=False)
class RuntimeInfoService:
    runtime_version: str
    cgroup_driver: Literal["cgroupfs", "systemd"]
    network: Network
    state: StateStore
    handlers: list[HandlerFeatures]
    supplemental_groups_policy: bool = False

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        saved = self.state.get(_STATE_KIND, _STATE_KEY) or {}
        self._pod_cidr = str(saved.get("pod_cidr", ""))

    def version(self) -> VersionInfo:
        return VersionInfo(KUBELET_API_VERSION, RUNTIME_NAME, self.runtime_version, RUNTIME_API_VERSION)

    def status(self) -> RuntimeStatus:
        net = self.network.readiness()
        return RuntimeStatus(
            conditions=[
                Condition(RUNTIME_READY, True),
                Condition(NETWORK_READY, net.ready, net.reason, net.message),
            ],
            handlers=list(self.handlers),
            supplemental_groups_policy=self.supplemental_groups_policy,
        )

    @property
    def pod_cidr(self) -> str:
        return self._pod_cidr

    def update_pod_cidr(self, pod_cidr: str) -> None:
        """Keep the node's pod CIDR; an empty value (an update about something else) keeps the old one."""
        if not pod_cidr:
            return
        with self._lock:
            self.state.put(_STATE_KIND, _STATE_KEY, {"pod_cidr": pod_cidr})
            self._pod_cidr = pod_cidr

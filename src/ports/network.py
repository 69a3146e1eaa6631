"""The pod network (CNI on a real node).

The runtime asks for a pod's interface in a network namespace (setup), checks it (check), and releases it
(teardown). An attachment is what setup made: the addresses, the interfaces and whatever the adapter needs
to undo it later (for CNI: the network config and the result, like libcni's cache), so a teardown after a
restart or a config change releases exactly what was taken.
"""

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class NetworkReadiness:
    ready: bool
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class PortMapping:
    protocol: str  # "tcp", "udp" or "sctp"
    container_port: int
    host_port: int = 0
    host_ip: str = ""


@dataclass(frozen=True)
class DnsSettings:
    servers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class BandwidthLimits:
    """Bits per second (0: no limit), from the kubernetes.io/{ingress,egress}-bandwidth annotations."""

    ingress_rate: int = 0
    egress_rate: int = 0


@dataclass(frozen=True)
class PodNetworkRequest:
    """Who the pod is and where its interface goes."""

    sandbox_id: str
    netns_path: str
    pod_name: str
    pod_namespace: str
    pod_uid: str
    port_mappings: list[PortMapping] = field(default_factory=list)
    dns: DnsSettings | None = None
    # Addresses the pod asks for (the CNI "ips" capability); empty lets IPAM choose.
    ips: list[str] = field(default_factory=list)
    bandwidth: BandwidthLimits | None = None
    interface: str = "eth0"


@dataclass(frozen=True)
class PodInterface:
    name: str
    mac: str = ""
    sandbox: str = ""


@dataclass(frozen=True)
class PodAddress:
    """One address of the pod with its prefix, e.g. 10.86.3.4/24."""

    address: str
    gateway: str = ""
    interface: str = ""

    @property
    def ip(self) -> str:
        return self.address.split("/", 1)[0]

    @property
    def version(self) -> int:
        return 6 if ":" in self.ip else 4


@dataclass(frozen=True)
class NetworkAttachment:
    network_name: str
    addresses: list[PodAddress]
    interfaces: list[PodInterface]
    # Adapter-private data needed to undo this attachment (JSON-serialisable).
    undo: dict[str, Any] = field(default_factory=dict)

    @property
    def ips(self) -> list[str]:
        """Every pod IP, IPv4 first (the order the kubelet expects)."""
        ordered = sorted(self.addresses, key=lambda a: a.version)
        return [a.ip for a in ordered]


class Network(Protocol):
    def readiness(self) -> NetworkReadiness:
        """Whether pods can get a network now; the reason and message say why not."""
        ...

    def setup(self, request: PodNetworkRequest) -> NetworkAttachment:
        """Attach the pod; on failure, whatever was made is undone before the error is raised."""
        ...

    def check(self, request: PodNetworkRequest, attachment: NetworkAttachment) -> None:
        """Raise when the pod's network is not what setup made."""
        ...

    def teardown(
        self, request: PodNetworkRequest, attachment: NetworkAttachment | None, timeout: float | None = None
    ) -> None:
        """Release the pod's network within `timeout` seconds (None: the adapter's own limit). Idempotent;
        `attachment` None means setup may have been cut short (a crash) and the current configuration is
        used to undo it."""
        ...

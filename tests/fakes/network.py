"""An in-memory Network: hands out addresses from a small pool and remembers who holds which.

Failures can be injected (a failing ADD, DELs that fail a number of times) to exercise the domain's
clean-up and retry paths.
"""

import ipaddress
import threading

from domain.errors import Internal, NotFound
from ports.network import (
    NetworkAttachment,
    NetworkReadiness,
    PodAddress,
    PodInterface,
    PodNetworkRequest,
)


class FakeNetwork:
    def __init__(self, ready: bool = True, subnet: str = "10.88.0.0/24", subnet6: str = "") -> None:
        self.ready = ready
        self._lock = threading.Lock()
        self._pool = list(ipaddress.ip_network(subnet).hosts())[1:]
        self._gateway = str(next(ipaddress.ip_network(subnet).hosts()))
        self._prefix = ipaddress.ip_network(subnet).prefixlen
        self._subnet6 = ipaddress.ip_network(subnet6) if subnet6 else None
        self.attached: dict[str, NetworkAttachment] = {}
        self.fail_setup = False
        self.teardown_failures_left = 0
        self.teardown_calls = 0
        self.teardown_timeouts: list[float | None] = []
        self.teardown_netns: list[str] = []  # the namespace path each DEL was given
        self.host_ports: dict[int, str] = {}

    def readiness(self) -> NetworkReadiness:
        if self.ready:
            return NetworkReadiness(True)
        return NetworkReadiness(False, "NetworkPluginNotReady", "fake network is not ready")

    def setup(self, request: PodNetworkRequest) -> NetworkAttachment:
        if not request.netns_path:
            raise Internal("a pod network needs a network namespace")
        if self.fail_setup:
            raise Internal("fake CNI ADD failed")
        with self._lock:
            if request.sandbox_id in self.attached:
                return self.attached[request.sandbox_id]
            taken = {a.addresses[0].ip for a in self.attached.values()}
            free = next((ip for ip in self._pool if str(ip) not in taken), None)
            if free is None:
                raise Internal("fake IPAM: no free address")
            addresses = [PodAddress(f"{free}/{self._prefix}", self._gateway, request.interface)]
            if self._subnet6 is not None:
                host_part = int(free) - int(self._pool[0]) + 2
                ip6 = self._subnet6.network_address + host_part
                addresses.append(PodAddress(f"{ip6}/{self._subnet6.prefixlen}", "", request.interface))
            attachment = NetworkAttachment(
                network_name="fake",
                addresses=addresses,
                interfaces=[PodInterface(request.interface, "02:00:00:00:00:01", request.netns_path)],
                undo={"netns": request.netns_path},
            )
            self.attached[request.sandbox_id] = attachment
            for mapping in request.port_mappings:
                if mapping.host_port:
                    self.host_ports[mapping.host_port] = request.sandbox_id
        return attachment

    def check(self, request: PodNetworkRequest, attachment: NetworkAttachment) -> None:
        with self._lock:
            if self.attached.get(request.sandbox_id) != attachment:
                raise NotFound(f"pod {request.sandbox_id} is not attached")

    def teardown(
        self, request: PodNetworkRequest, attachment: NetworkAttachment | None, timeout: float | None = None
    ) -> None:
        with self._lock:
            self.teardown_timeouts.append(timeout)
            self.teardown_netns.append(request.netns_path)
            self.teardown_calls += 1
            if self.teardown_failures_left > 0:
                self.teardown_failures_left -= 1
                raise Internal("fake CNI DEL failed")
            self.attached.pop(request.sandbox_id, None)
            for port in [p for p, owner in self.host_ports.items() if owner == request.sandbox_id]:
                del self.host_ports[port]

"""In-memory Namespaces: paths that exist until removed, sysctls checked against a small kernel table."""

import threading

from domain.errors import InvalidArgument
from ports.namespaces import NamespaceRequest, PodNamespaces

# Sysctls this fake kernel has, with their defaults.
KNOWN_SYSCTLS = {
    "net.ipv4.ip_forward": "0",
    "net.ipv4.ip_unprivileged_port_start": "1024",
    "net.ipv4.ping_group_range": "1\t0",
    "kernel.shm_rmid_forced": "0",
    "kernel.shmmax": "18446744073692774399",
    "kernel.msgmax": "8192",
    "kernel.sem": "32000\t1024000000\t500\t32000",
    "fs.mqueue.msg_max": "10",
}


class FakeNamespaces:
    def __init__(self, root: str = "/fake/run/pods") -> None:
        self._root = root
        self._lock = threading.Lock()
        self.pinned: dict[str, PodNamespaces] = {}
        self.sysctls: dict[str, dict[str, str]] = {}
        self.hostnames: dict[str, str] = {}
        self.requests: dict[str, NamespaceRequest] = {}

    def create(self, sandbox_id: str, request: NamespaceRequest) -> PodNamespaces:
        for name, value in request.sysctls.items():
            if name not in KNOWN_SYSCTLS:
                raise InvalidArgument(f"sysctl {name!r} does not exist in the pod's namespaces")
            if not value.strip():
                raise InvalidArgument(f"sysctl {name!r}: the kernel refused value {value!r}")
        base = f"{self._root}/{sandbox_id}/ns"
        made = PodNamespaces(
            network=f"{base}/net" if request.network else "",
            ipc=f"{base}/ipc" if request.ipc else "",
            uts=f"{base}/uts" if request.uts else "",
            user=f"{base}/user" if request.user_namespace is not None else "",
        )
        with self._lock:
            self.pinned[sandbox_id] = made
            self.sysctls[sandbox_id] = dict(request.sysctls)
            self.requests[sandbox_id] = request
            if request.uts:
                self.hostnames[sandbox_id] = request.hostname
        return made

    def exists(self, path: str) -> bool:
        with self._lock:
            return any(path and path in (p.network, p.ipc, p.uts, p.user) for p in self.pinned.values())

    def remove(self, sandbox_id: str) -> None:
        with self._lock:
            self.pinned.pop(sandbox_id, None)
            self.sysctls.pop(sandbox_id, None)
            self.hostnames.pop(sandbox_id, None)
            self.requests.pop(sandbox_id, None)

"""Which sysctls a pod may set: only those the kernel scopes to a namespace the pod owns.

The rules follow cri-o and Kubernetes: net.* belong to the network namespace (refused with the host's
network), kernel.shm*, kernel.msg*, kernel.sem and fs.mqueue.* to the IPC namespace (refused with the
host's IPC). Anything else would change the whole node and is refused by name.
"""

from domain.errors import InvalidArgument

_IPC_NAMES = frozenset({"kernel.sem"})
_IPC_PREFIXES = ("kernel.shm", "kernel.msg", "fs.mqueue.")
_NET_PREFIX = "net."


def namespace_of(name: str) -> str:
    """ "net" or "ipc" for a namespaced sysctl, "" for one that is not."""
    if name.startswith(_NET_PREFIX):
        return "net"
    if name in _IPC_NAMES or name.startswith(_IPC_PREFIXES):
        return "ipc"
    return ""


def normalize(name: str) -> str:
    """Kubernetes accepts `net/ipv4/ip_forward` as well as dots."""
    return name.replace("/", ".") if "." not in name else name


def validate_sysctls(sysctls: dict[str, str], host_network: bool, host_ipc: bool) -> dict[str, str]:
    """The sysctls with normalised names; InvalidArgument naming the first one that is not allowed."""
    result: dict[str, str] = {}
    for raw_name, value in sorted(sysctls.items()):
        name = normalize(raw_name)
        namespace = namespace_of(name)
        if not namespace or ".." in name or name.endswith("."):
            raise InvalidArgument(
                f"sysctl {raw_name!r} is not allowed: only namespaced sysctls (net.*, kernel.shm*, "
                "kernel.msg*, kernel.sem, fs.mqueue.*) can be set for a pod"
            )
        if namespace == "net" and host_network:
            raise InvalidArgument(f"sysctl {raw_name!r} is not allowed with the host network namespace")
        if namespace == "ipc" and host_ipc:
            raise InvalidArgument(f"sysctl {raw_name!r} is not allowed with the host IPC namespace")
        if "\n" in value or "\x00" in value:
            raise InvalidArgument(f"sysctl {raw_name!r} has a value with a newline or NUL byte")
        result[name] = value
    return result

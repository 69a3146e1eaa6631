"""Checks on a RunPodSandbox request before anything is made, so bad input leaves nothing behind."""

import ipaddress
import re
from dataclasses import replace

from domain.errors import InvalidArgument
from domain.names import check_kube_name
from domain.quantity import parse_quantity
from domain.sandbox_model import NamespaceMode, SandboxConfig
from domain.sysctls import validate_sysctls
from ports.network import BandwidthLimits

_PROTOCOLS = ("tcp", "udp", "sctp")
# Letters, digits, '-' and '.', as DNS names are; a trailing dot is an absolute name, which the kubelet sends
# for `setHostnameAsFQDN` when its clusterDomain is empty (`<host>.<subdomain>.<namespace>.svc.`).
_HOSTNAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\.?")
HOST_NAME_MAX = 64  # sethostname(2) refuses longer names; the kubelet never sends one


def validated(config: SandboxConfig) -> SandboxConfig:
    """The config with normalised sysctls; InvalidArgument naming the first field that is wrong."""
    meta = config.metadata
    # Kubernetes limits: a pod name is a DNS subdomain, a namespace a DNS label, a uid a UUID (or a hash).
    check_kube_name("PodSandboxConfig.metadata.name", meta.name)
    check_kube_name("PodSandboxConfig.metadata.namespace", meta.namespace, 63)
    check_kube_name("PodSandboxConfig.metadata.uid", meta.uid, 128)
    if meta.attempt < 0:
        raise InvalidArgument("PodSandboxConfig.metadata.attempt must not be negative")
    options = config.namespace_options
    for kind, mode in (("network", options.network), ("pid", options.pid), ("ipc", options.ipc)):
        if mode == NamespaceMode.TARGET:
            raise InvalidArgument(f"namespace mode TARGET is only for containers, not for the pod {kind}")
    if config.user_namespace is not None and NamespaceMode.NODE in (
        options.network,
        options.pid,
        options.ipc,
    ):
        # The kubelet never asks for this (hostUsers: false excludes host namespaces); the pod's namespaces
        # are made inside its user namespace, which cannot own the host's.
        raise InvalidArgument(
            "PodSandboxConfig.linux.security_context.namespace_options.userns_options: mode POD cannot be "
            "combined with the host's network, PID or IPC namespace"
        )
    if config.log_directory:
        _check_log_directory(config.log_directory)
    if config.hostname:
        _check_hostname(config.hostname)
    if config.dns is not None:
        for server in config.dns.servers:
            _check_ip(server, "DNS server")
        for text in [*config.dns.searches, *config.dns.options]:
            if not text or any(c.isspace() for c in text):
                raise InvalidArgument(f"DNS search or option {text!r} must be one word")
    for mapping in config.port_mappings:
        if mapping.protocol not in _PROTOCOLS:
            raise InvalidArgument(f"port mapping protocol {mapping.protocol!r} is not TCP, UDP or SCTP")
        if not 0 < mapping.container_port <= 65535:
            raise InvalidArgument(f"port mapping container_port {mapping.container_port} is not a port")
        if not 0 <= mapping.host_port <= 65535:
            raise InvalidArgument(f"port mapping host_port {mapping.host_port} is not a port")
        if mapping.host_ip:
            _check_ip(mapping.host_ip, "port mapping host_ip")
    bandwidth_limits(config.annotations)
    sysctls = validate_sysctls(config.sysctls, options.host_network, options.host_ipc)
    return replace(config, sysctls=sysctls)


def _check_hostname(hostname: str) -> None:
    if len(hostname) > HOST_NAME_MAX:
        raise InvalidArgument(
            f"PodSandboxConfig.hostname: {len(hostname)} characters, at most {HOST_NAME_MAX} are allowed"
        )
    if not _HOSTNAME.fullmatch(hostname):
        raise InvalidArgument(f"PodSandboxConfig.hostname {hostname!r} is not a valid host name")


INGRESS_BANDWIDTH = "kubernetes.io/ingress-bandwidth"
EGRESS_BANDWIDTH = "kubernetes.io/egress-bandwidth"


def bandwidth_limits(annotations: dict[str, str]) -> BandwidthLimits | None:
    """The pod's traffic shaping annotations (what the kubelet's bandwidth plugin support reads)."""
    rates = []
    for key in (INGRESS_BANDWIDTH, EGRESS_BANDWIDTH):
        text = annotations.get(key, "")
        try:
            rates.append(parse_quantity(text) if text else 0)
        except ValueError:
            raise InvalidArgument(f"annotation {key}={text!r} is not a quantity (e.g. 10M)") from None
    if not any(rates):
        return None
    return BandwidthLimits(ingress_rate=rates[0], egress_rate=rates[1])


# Kernel file systems: a directory cannot be made there, and writing a "log" into one changes the kernel.
_PSEUDO_FILE_SYSTEMS = ("/proc", "/sys", "/dev")
MAX_PATH = 4096  # PATH_MAX


def _check_log_directory(path: str) -> None:
    """Any absolute directory, as cri-o and containerd allow (the kubelet picks /var/log/pods/...), but in a
    normal form, not / and not in a kernel file system. Symlinks are refused where it is made (adapter)."""
    where = "PodSandboxConfig.log_directory"
    if len(path) > MAX_PATH:
        raise InvalidArgument(f"{where}: {len(path)} characters, at most {MAX_PATH} are allowed")
    if not path.startswith("/"):
        raise InvalidArgument(f"{where} {path!r} must be an absolute path")
    parts = [p for p in path.split("/") if p]
    if any(p in (".", "..") for p in parts):
        raise InvalidArgument(f"{where} {path!r} must not contain '.' or '..'")
    normal = "/" + "/".join(parts)
    if normal == "/" or any(normal == top or normal.startswith(top + "/") for top in _PSEUDO_FILE_SYSTEMS):
        raise InvalidArgument(f"{where} {path!r} is not a place for logs")


def _check_ip(text: str, what: str) -> None:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"{what} {text!r} is not an IP address") from None

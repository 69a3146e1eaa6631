"""The one CNI config both runtimes use: a bridge of the run's own, host-local IPAM in the run's dir.

No masquerade and no portmap: pods in the bench never leave the host, and so the plugins add no iptables
rules that could outlive the run. The bridge itself is deleted when the run ends. Each run has its own
network name, bridge and subnet, so runs that share a host (several worktrees, a test and a bench) do not
tear down each other's bridge or cached results.
"""

import contextlib
import ipaddress
import json
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from adapters.process.runner import run

NETWORK_PREFIX = "pcbench"
BRIDGE_PREFIX = "pcb"
# Runs take a /22 (1022 pod addresses) of this range: the first free one from a slot the run id picks.
RANGE = ipaddress.IPv4Network("10.90.0.0/16")
PREFIX_LENGTH = 22
RESULTS_CACHE = Path("/var/lib/cni/results")
ROUTES = Path("/proc/net/route")


@dataclass(frozen=True)
class BenchNetwork:
    name: str
    bridge: str
    subnet: str


def parse_routes(text: str) -> list[ipaddress.IPv4Network]:
    """The IPv4 destinations in /proc/net/route (hex, in host byte order: little-endian here)."""
    found = []
    for line in text.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        address = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
        mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
        found.append(ipaddress.IPv4Network(f"{address}/{mask}", strict=False))
    return found


def free_subnet(run_id: str, used: list[ipaddress.IPv4Network]) -> ipaddress.IPv4Network:
    """The first /22 of RANGE, from the run id's slot on, that overlaps no route (other than the default)."""
    candidates = list(RANGE.subnets(new_prefix=PREFIX_LENGTH))
    start = int(run_id, 16) % len(candidates)
    taken = [network for network in used if network.prefixlen > 0]
    for offset in range(len(candidates)):
        candidate = candidates[(start + offset) % len(candidates)]
        if not any(candidate.overlaps(network) for network in taken):
            return candidate
    raise RuntimeError(f"every /{PREFIX_LENGTH} of {RANGE} is routed already: remove stale bench bridges")


def network_for(run_id: str) -> BenchNetwork:
    """This run's network: names from its id (a bridge name may not pass 15 bytes), a subnet nobody routes."""
    subnet = free_subnet(run_id, parse_routes(ROUTES.read_text()))
    return BenchNetwork(f"{NETWORK_PREFIX}-{run_id}", f"{BRIDGE_PREFIX}{run_id}", str(subnet))


def conflist(ipam_dir: Path, network: BenchNetwork) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": network.name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": network.subnet}]],
                },
            },
            {"type": "loopback"},
        ],
    }


def write_conf_dir(conf_dir: Path, ipam_dir: Path, network: BenchNetwork) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "10-pcbench.conflist"
    path.write_text(json.dumps(conflist(ipam_dir, network), indent=1))
    return path


def remove_cached_results(network: str, cache_dir: Path = RESULTS_CACHE) -> list[Path]:
    """Delete libcni's cached ADD results for the run's network and for those pods' loopback.

    containerd keeps them in /var/lib/cni/results (not configurable in 1.6) and deletes them on CNI DEL;
    a pod whose DEL never ran (a killed run) leaves them behind.
    """
    removed: list[Path] = []
    prefix = f"{network}-"
    if not cache_dir.is_dir():
        return removed
    for entry in cache_dir.iterdir():
        if not entry.name.startswith(prefix):
            continue
        container_id = entry.name[len(prefix) :].rsplit("-", 1)[0]
        for path in (entry, cache_dir / f"cni-loopback-{container_id}-lo"):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed.append(path)
    return removed


def delete_bridge(bridge: str) -> None:
    if Path(f"/sys/class/net/{bridge}").exists():
        with contextlib.suppress(Exception):
            run(["ip", "link", "delete", bridge], timeout=30)

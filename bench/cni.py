"""The one CNI config both runtimes use: a bridge of the bench's own, host-local IPAM in the run's dir.

No masquerade and no portmap: pods in the bench never leave the host, and so the plugins add no iptables
rules that could outlive the run. The bridge itself is deleted when the run ends.
"""

import contextlib
import json
from pathlib import Path

from adapters.process.runner import run

BRIDGE = "pcbench0"
SUBNET = "10.90.0.0/20"
NETWORK_NAME = "pcbench"
RESULTS_CACHE = Path("/var/lib/cni/results")


def conflist(ipam_dir: Path, bridge: str = BRIDGE, subnet: str = SUBNET) -> dict[str, object]:
    return {
        "cniVersion": "1.0.0",
        "name": NETWORK_NAME,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": subnet}]],
                },
            },
            {"type": "loopback"},
        ],
    }


def write_conf_dir(conf_dir: Path, ipam_dir: Path) -> Path:
    conf_dir.mkdir(parents=True, exist_ok=True)
    ipam_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / "10-pcbench.conflist"
    path.write_text(json.dumps(conflist(ipam_dir), indent=1))
    return path


def remove_cached_results(cache_dir: Path = RESULTS_CACHE, network: str = NETWORK_NAME) -> list[Path]:
    """Delete libcni's cached ADD results for the bench network and for those pods' loopback.

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


def delete_bridge(bridge: str = BRIDGE) -> None:
    if Path(f"/sys/class/net/{bridge}").exists():
        with contextlib.suppress(Exception):
            run(["ip", "link", "delete", bridge], timeout=30)

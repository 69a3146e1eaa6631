"""Helpers of the monitoring e2e suites: a private pod network (bridge pcmon<hex>, a /24 in 10.89.0.0/16),
free ports, and waiting for the stats cache to catch up."""

import contextlib
import json
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from tests.pod_host import HostTestNetwork

_T = TypeVar("_T")


def monitoring_network(root: Path) -> HostTestNetwork:
    token = secrets.token_hex(2)
    network = HostTestNetwork(
        conf_dir=root / "net.d",
        bridge=f"pcmon{token}",
        subnet=f"10.89.{1 + secrets.randbelow(250)}.0/24",
        data_dir=root / "ipam",
        name=f"pcmon-{token}",
    )
    network.conf_dir.mkdir(parents=True)
    conflist = {
        "cniVersion": "1.0.0",
        "name": network.name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": network.bridge,
                "isGateway": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(network.data_dir),
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "ranges": [[{"subnet": network.subnet}]],
                },
            },
            {"type": "loopback"},
        ],
    }
    (network.conf_dir / "10-pcmon.conflist").write_text(json.dumps(conflist))
    return network


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def eventually(read: Callable[[], _T], done: Callable[[_T], bool], what: str) -> _T:
    """Re-read until `done` (the cache refreshes every stats.period); gives up after 60 s."""
    deadline = time.monotonic() + 60
    while True:
        value = read()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: last value {value!r}")
        time.sleep(0.1)


def remove_cgroup_tree(parent: str) -> list[str]:
    """Remove `parent` and everything below it in every hierarchy, cgroup2's `unified` included (runc makes
    the container's path there too on a hybrid host); returns what could not be removed."""
    left = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        base = hierarchy / parent.strip("/")
        if not base.is_dir():
            continue
        below = sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for path in [*below, base]:
            try:
                path.rmdir()
            except OSError:
                left.append(str(path))
        with contextlib.suppress(OSError):
            base.parent.rmdir()  # the shared test parent, once no other run uses it
    return left

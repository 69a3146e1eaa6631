"""Real network namespaces for tests (`pcmon-*`, addresses in 10.89.0.0/16), always torn down."""

import contextlib
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from adapters.process.runner import run

PREFIX = "pcmon-"
_SEND_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[2])):
    s.sendto(b"x" * 1000, (sys.argv[1], 9))
"""


@dataclass(frozen=True)
class LinkedNamespaces:
    """Two namespaces joined by a veth pair: `eth0` in each, `left_ip` and `right_ip` on it."""

    left: str
    right: str
    left_ip: str
    right_ip: str

    @property
    def left_path(self) -> str:
        return f"/run/netns/{self.left}"

    @property
    def right_path(self) -> str:
        return f"/run/netns/{self.right}"

    def send_udp(self, datagrams: int) -> None:
        """From left to right: 1000-byte datagrams (no listener needed; the counters see them)."""
        command = [sys.executable, "-c", _SEND_UDP, self.right_ip, str(datagrams)]
        run(["ip", "netns", "exec", self.left, *command], timeout=30)


def ip(*args: str) -> None:
    run(["ip", *args], timeout=30)


@contextlib.contextmanager
def linked_namespaces() -> Iterator[LinkedNamespaces]:
    tag = uuid.uuid4().hex[:6]
    left, right = f"{PREFIX}{tag}-l", f"{PREFIX}{tag}-r"
    subnet = random.randint(1, 254)
    pair = LinkedNamespaces(left, right, f"10.89.{subnet}.1", f"10.89.{subnet}.2")
    made: list[str] = []
    try:
        for name in (left, right):
            ip("netns", "add", name)
            made.append(name)
        ip(
            "link",
            "add",
            f"pcm{tag}l",
            "netns",
            left,
            "type",
            "veth",
            "peer",
            "name",
            f"pcm{tag}r",
            "netns",
            right,
        )
        for name, side, address in ((left, "l", pair.left_ip), (right, "r", pair.right_ip)):
            ip("-n", name, "link", "set", f"pcm{tag}{side}", "name", "eth0")
            ip("-n", name, "addr", "add", f"{address}/30", "dev", "eth0")
            ip("-n", name, "link", "set", "eth0", "up")
            ip("-n", name, "link", "set", "lo", "up")
        yield pair
    finally:
        for name in made:
            with contextlib.suppress(Exception):
                ip("netns", "delete", name)  # deleting one end removes the veth pair

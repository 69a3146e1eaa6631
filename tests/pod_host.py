"""Host-side helpers for tests that make real pod networks: a private CNI config and a leak report.

Every network a test makes uses a bridge named pcpod<hex> and a /24 inside 10.86.0.0/16 with its own
host-local data dir, so parallel runs and other work on the machine never collide; `cleanup` removes
whatever a test left (bridge, veths, iptables rules and chains of its pods, IPAM files).
"""

import errno
import json
import re
import secrets
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError


@dataclass
class HostTestNetwork:
    conf_dir: Path
    bridge: str
    subnet: str
    data_dir: Path
    name: str
    subnet6: str = ""
    sandbox_ids: set[str] = field(default_factory=set)

    @property
    def prefix(self) -> str:
        return ".".join(self.subnet.split(".")[:3])  # "10.86.N"

    def mentions_pod(self, rule: str) -> bool:
        """Whether an iptables rule belongs to this network: its name or a full sandbox id in a CNI comment,
        or an address of its subnets."""
        if f'name: \\"{self.name}\\"' in rule or any(sid and sid in rule for sid in self.sandbox_ids):
            return True
        if re.search(re.escape(self.prefix) + r"\.\d", rule):
            return True
        return bool(self.subnet6) and self.subnet6.split("::")[0] + ":" in rule


def make_test_network(
    root: Path, cni_version: str = "1.0.0", portmap: bool = True, dual_stack: bool = False
) -> HostTestNetwork:
    token = secrets.token_hex(2)
    octet = unused_octet()
    network = HostTestNetwork(
        conf_dir=root / f"net.d-{token}",
        bridge=f"pcpod{token}",
        subnet=f"10.86.{octet}.0/24",
        data_dir=root / f"ipam-{token}",
        name=f"pcpod-{token}",
        subnet6=f"fd00:86:{octet:x}::/64" if dual_stack else "",
    )
    network.conf_dir.mkdir(parents=True)
    plugins: list[dict[str, object]] = [
        {
            "type": "bridge",
            "bridge": network.bridge,
            "isGateway": True,
            "ipMasq": True,
            "hairpinMode": True,
            "ipam": {
                "type": "host-local",
                "dataDir": str(network.data_dir),
                "routes": [{"dst": "0.0.0.0/0"}] + ([{"dst": "::/0"}] if dual_stack else []),
                "ranges": [[{"subnet": network.subnet}]]
                + ([[{"subnet": network.subnet6}]] if dual_stack else []),
            },
        }
    ]
    if portmap:
        plugins.append({"type": "portmap", "capabilities": {"portMappings": True}})
    plugins.append({"type": "loopback"})
    conflist = {"cniVersion": cni_version, "name": network.name, "plugins": plugins}
    (network.conf_dir / "10-pcpod.conflist").write_text(json.dumps(conflist, indent=2))
    return network


def unused_octet() -> int:
    """A /24 of 10.86.0.0/16 that no route and no iptables rule on this host mentions: other test runs make
    their bridges too, and a run killed before its cleanup can leave NAT rules whose bridge is gone, which
    this network's leftover check would then count as its own."""
    routes = subprocess.run(["ip", "-4", "route", "show"], capture_output=True, text=True, check=True).stdout
    mentions = routes + "\n".join(_iptables("nat"))
    used = {int(m) for m in re.findall(r"\b10\.86\.(\d+)\.", mentions)}
    free = [n for n in range(1, 255) if n not in used]
    return free[secrets.randbelow(len(free))]


def nat_rules() -> list[str]:
    return [rule for tool in _TOOLS for table in ("nat", "filter") for rule in _iptables(table, tool)]


_TOOLS = ("iptables", "ip6tables")


def _iptables(table: str, tool: str = "iptables") -> list[str]:
    out = subprocess.run([tool, "-w", "-t", table, "-S"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def veths_on(bridge: str) -> list[str]:
    with IPRoute() as ipr:
        masters = ipr.link_lookup(ifname=bridge)
        if not masters:
            return []
        return [
            str(link.get_attr("IFLA_IFNAME"))
            for link in ipr.get_links()
            if link.get_attr("IFLA_MASTER") == masters[0]
        ]


def leftovers(network: HostTestNetwork) -> list[str]:
    """Everything of the network's pods still on the host (the bridge itself is shared and may stay)."""
    found = [f"veth {v}" for v in veths_on(network.bridge)]
    found += [f"iptables {rule}" for rule in nat_rules() if network.mentions_pod(rule)]
    if network.data_dir.exists():
        found += [f"ipam {p.name}" for p in (network.data_dir / network.name).glob("*") if _is_ip(p.name)]
    return found


def _is_ip(name: str) -> bool:
    return bool(re.fullmatch(r"\d+\.\d+\.\d+\.\d+|[0-9a-f:]+", name)) and name.count(".") == 3


def cleanup(network: HostTestNetwork, keep_ipam: bool = False) -> None:
    """Remove what the tests left, leaks included, so a failing test does not poison the machine. With
    `keep_ipam`, host-local's files stay (a reboot keeps them: tests/reboot_host.py)."""
    with IPRoute() as ipr:
        for veth in veths_on(network.bridge):
            _delete_link(ipr, veth)
        if ipr.link_lookup(ifname=network.bridge):
            _delete_link(ipr, network.bridge)
    for tool in _TOOLS:
        for table in ("nat", "filter"):
            doomed_chains = set()
            for rule in _iptables(table, tool):
                if rule.startswith("-A ") and network.mentions_pod(rule):
                    _ipt(table, ["-D", *_split(rule)[1:]], tool)
                    target = re.search(r"-j (CNI-[\w-]+)", rule)
                    if target:
                        doomed_chains.add(target.group(1))
            for chain in doomed_chains:
                if not chain.startswith("CNI-HOSTPORT-"):
                    _ipt(table, ["-F", chain], tool)
                    _ipt(table, ["-X", chain], tool)
        _remove_idle_hostport_chains(tool)
    if not keep_ipam:
        subprocess.run(["rm", "-rf", str(network.data_dir)], check=False)


def _delete_link(ipr: IPRoute, name: str) -> None:
    """Delete a link that may vanish meanwhile: a veth goes with its pod's namespace, which the kernel
    destroys in the background once the last pin is unmounted (`cleanup_run_dir`) or its process killed."""
    try:
        ipr.link("del", ifname=name)
    except NetlinkError as err:
        if err.code != errno.ENODEV:
            raise


def _remove_idle_hostport_chains(tool: str) -> None:
    """portmap's shared chains, once no CNI pod of anyone is on the host (other runs may be starting one:
    any per-pod CNI chain means hands off)."""
    rules = _iptables("nat", tool)
    dnat_entries = [r for r in rules if r.startswith("-A CNI-HOSTPORT-DNAT ")]
    pod_chains = [r for r in rules if r.startswith("-N CNI-") and not r.startswith("-N CNI-HOSTPORT-")]
    if dnat_entries or pod_chains or not any(r == "-N CNI-HOSTPORT-DNAT" for r in rules):
        return
    for rule in rules:
        if rule.startswith("-A ") and "-j CNI-HOSTPORT-" in rule and not rule.startswith("-A CNI-HOSTPORT-"):
            _ipt("nat", ["-D", *_split(rule)[1:]], tool)
    for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-SETMARK", "CNI-HOSTPORT-MASQ"):
        _ipt("nat", ["-F", chain], tool)
        _ipt("nat", ["-X", chain], tool)


def _split(rule: str) -> list[str]:
    import shlex

    return shlex.split(rule)


def _ipt(table: str, args: list[str], tool: str = "iptables") -> None:
    subprocess.run([tool, "-w", "-t", table, *args], capture_output=True, check=False)


def netns_mounts(run_dir: Path) -> list[str]:
    """Mounts (nsfs pins, shm tmpfs) under a run dir."""
    prefix = str(run_dir)
    with open("/proc/self/mountinfo") as handle:
        return [line.split()[4] for line in handle if line.split()[4].startswith(prefix)]


def cgroup_leftovers(parent: str) -> list[str]:
    """Cgroups below `parent` in any hierarchy, the unified one of a hybrid host too (the parent itself
    excluded)."""
    found = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        base = hierarchy / parent.strip("/")
        if base.is_dir():
            found += [str(p) for p in base.rglob("*") if p.is_dir()]
    return found


def remove_cgroups(parent: str) -> None:
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        base = hierarchy / parent.strip("/")
        if not base.is_dir():
            continue
        for path in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            path.rmdir()
        base.rmdir()


def cleanup_run_dir(run_dir: Path) -> None:
    """Kill infra processes and unmount pins a failed test left under a daemon's run dir."""
    import contextlib
    import os
    import signal

    from adapters.namespaces.linux import process_start_time

    for pid_file in run_dir.glob("pods/*/infra/pid"):
        pid, start = pid_file.read_text().split()
        if process_start_time(int(pid)) == int(start):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
    for mount in sorted(netns_mounts(run_dir), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], check=False)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


SERVE_ONCE = """
import socket, sys
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", int(sys.argv[1])))
server.listen(16)
print("listening", flush=True)
while True:
    conn, _ = server.accept()
    conn.sendall(sys.argv[2].encode())
    conn.close()
"""

CONNECT = """
import socket, sys, time
deadline = time.monotonic() + 30
while True:
    try:
        with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3) as conn:
            print(conn.recv(64).decode())
            break
    except OSError as err:
        if time.monotonic() > deadline:
            print(f"failed: {err}")
            break
        time.sleep(0.1)
"""


def serve_in_netns(netns: str, port: int, reply: str) -> subprocess.Popen[str]:
    """A TCP server inside a pod's network namespace that answers every connection with `reply`."""
    import sys

    process = subprocess.Popen(
        ["nsenter", f"--net={netns}", sys.executable, "-c", SERVE_ONCE, str(port), reply],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "listening"
    return process


def connect(host: str, port: int, netns: str = "") -> str:
    """What a TCP connection to host:port answers, from the host or from inside a namespace."""
    import sys

    prefix = ["nsenter", f"--net={netns}"] if netns else []
    command = [*prefix, sys.executable, "-c", CONNECT, host, str(port)]
    return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout.strip()


def host_address() -> str:
    """An IPv4 address of this host other than loopback."""
    with IPRoute() as ipr:
        for addr in ipr.get_addr(family=2):
            ip = str(addr.get_attr("IFA_ADDRESS"))
            if not ip.startswith("127.") and not ip.startswith("10.86."):
                return ip
    raise RuntimeError("no non-loopback IPv4 address")

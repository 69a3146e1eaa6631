"""Reading a CNI result (spec 0.3.x/0.4.0 and 1.x share the fields pycrio needs).

Only addresses on interfaces inside the pod's namespace count as pod IPs; the host-side bridge and veth
also appear in the result.
"""

import ipaddress
from typing import Any

from domain.errors import Internal
from ports.network import PodAddress, PodInterface


def parse_result(result: dict[str, Any]) -> tuple[list[PodAddress], list[PodInterface]]:
    raw_interfaces = result.get("interfaces") or []
    if not isinstance(raw_interfaces, list):
        raise Internal(f"CNI result has malformed interfaces: {raw_interfaces!r:.200}")
    interfaces = [
        PodInterface(
            name=str(i.get("name", "")), mac=str(i.get("mac", "")), sandbox=str(i.get("sandbox", ""))
        )
        for i in raw_interfaces
        if isinstance(i, dict)
    ]
    addresses = []
    raw_ips = result.get("ips") or []
    if not isinstance(raw_ips, list):
        raise Internal(f"CNI result has malformed ips: {raw_ips!r:.200}")
    for ip in raw_ips:
        if not isinstance(ip, dict) or "address" not in ip:
            raise Internal(f"CNI result has a malformed ip entry: {ip!r:.200}")
        _check_address(ip)
        index = ip.get("interface")
        interface = interfaces[index] if isinstance(index, int) and 0 <= index < len(interfaces) else None
        if interface is not None and not interface.sandbox:
            continue  # an address on the host side
        addresses.append(
            PodAddress(
                address=str(ip["address"]),
                gateway=str(ip.get("gateway", "")),
                interface=interface.name if interface else "",
            )
        )
    return addresses, [i for i in interfaces if i.sandbox]


def _check_address(ip: dict[str, Any]) -> None:
    """What becomes the pod's IP must be one (CIDR form, as the spec says): the kubelet takes it as it is."""
    try:
        ipaddress.ip_interface(str(ip["address"]))
        if ip.get("gateway"):
            ipaddress.ip_address(str(ip["gateway"]))
    except ValueError as err:
        raise Internal(f"CNI result has a malformed ip entry: {err}"[:300]) from None

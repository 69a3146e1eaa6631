"""Reading a CNI result (spec 0.3.x/0.4.0 and 1.x share the fields pycrio needs).

Only addresses on interfaces inside the pod's namespace count as pod IPs; the host-side bridge and veth
also appear in the result.
"""

from typing import Any

from domain.errors import Internal
from ports.network import PodAddress, PodInterface


def parse_result(result: dict[str, Any]) -> tuple[list[PodAddress], list[PodInterface]]:
    raw_interfaces = result.get("interfaces") or []
    if not isinstance(raw_interfaces, list):
        raise Internal(f"CNI result has malformed interfaces: {raw_interfaces!r}")
    interfaces = [
        PodInterface(
            name=str(i.get("name", "")), mac=str(i.get("mac", "")), sandbox=str(i.get("sandbox", ""))
        )
        for i in raw_interfaces
        if isinstance(i, dict)
    ]
    addresses = []
    for ip in result.get("ips") or []:
        if not isinstance(ip, dict) or "address" not in ip:
            raise Internal(f"CNI result has a malformed ip entry: {ip!r}")
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

"""The platform of this machine, as image indexes name platforms (`linux/arm64/v8`, `linux/amd64`)."""

import platform

from domain.manifests import normalize_platform
from ports.registry import Platform

_MACHINES = {
    "x86_64": ("amd64", ""),
    "amd64": ("amd64", ""),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i686": ("386", ""),
    "i386": ("386", ""),
    "ppc64le": ("ppc64le", ""),
    "s390x": ("s390x", ""),
    "riscv64": ("riscv64", ""),
}


def host_platform() -> Platform:
    """What PullImage asks an index for when the request names no platform."""
    machine = platform.machine().lower()
    architecture, variant = _MACHINES.get(machine, (machine, ""))
    return normalize_platform(Platform("linux", architecture, variant))

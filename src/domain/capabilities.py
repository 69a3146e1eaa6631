"""Linux capability sets for a container, from the CRI add/drop lists and the daemon's own bounding set.

A process cannot hand out capabilities it does not hold: runc fails with "unable to apply caps" when the
spec names one outside the daemon's bounding set (here CAP_SYS_RESOURCE is missing). So "ALL" and
privileged mean "everything the daemon holds", and an explicit add of a capability the daemon lacks is
refused up front with the capability's name instead of failing later inside runc.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from domain.errors import InvalidArgument

# Capability numbers as in linux/capability.h; the index is the bit.
ALL_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
    "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
    "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

# cri-o's default_capabilities.
DEFAULT_CAPABILITIES: tuple[str, ...] = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE", "CAP_KILL",
)  # fmt: skip


@dataclass(frozen=True)
class CapabilitySets:
    bounding: tuple[str, ...]
    effective: tuple[str, ...]
    permitted: tuple[str, ...]
    inheritable: tuple[str, ...]
    ambient: tuple[str, ...]

    def to_oci(self) -> dict[str, list[str]]:
        return {
            "bounding": list(self.bounding),
            "effective": list(self.effective),
            "permitted": list(self.permitted),
            "inheritable": list(self.inheritable),
            "ambient": list(self.ambient),
        }


def capabilities_from_mask(mask: int) -> tuple[str, ...]:
    """Names of the bits set in a capability mask such as /proc/self/status CapBnd."""
    return tuple(name for bit, name in enumerate(ALL_CAPABILITIES) if mask >> bit & 1)


def normalize(field: str, name: str) -> str:
    """`net_admin`, `NET_ADMIN` and `CAP_NET_ADMIN` all mean CAP_NET_ADMIN; anything else is refused."""
    upper = name.strip().upper()
    full = upper if upper.startswith("CAP_") else "CAP_" + upper
    if full not in ALL_CAPABILITIES:
        raise InvalidArgument(f"{field}: unknown capability {name!r}")
    return full


def _is_all(names: Iterable[str]) -> bool:
    return any(n.strip().upper() in ("ALL", "CAP_ALL") for n in names)


def container_capabilities(
    privileged: bool,
    add: Iterable[str],
    drop: Iterable[str],
    add_ambient: Iterable[str],
    daemon_bounding: Iterable[str],
) -> CapabilitySets:
    held = [c for c in ALL_CAPABILITIES if c in set(daemon_bounding)]
    add, drop, add_ambient = list(add), list(drop), list(add_ambient)
    if privileged:
        chosen = list(held)
    else:
        chosen = [c for c in DEFAULT_CAPABILITIES if c in held]
        if _is_all(add):
            chosen = list(held)
        if _is_all(drop):
            chosen = []
        for name in add:
            if _is_all([name]):
                continue
            cap = normalize("add_capabilities", name)
            if cap not in held:
                raise InvalidArgument(f"add_capabilities: {cap} is not in the runtime's bounding set")
            if cap not in chosen:
                chosen.append(cap)
        dropped = {normalize("drop_capabilities", n) for n in drop if not _is_all([n])}
        chosen = [c for c in chosen if c not in dropped]
    ambient = []
    for name in add_ambient:
        cap = normalize("add_ambient_capabilities", name)
        if cap not in held:
            raise InvalidArgument(f"add_ambient_capabilities: {cap} is not in the runtime's bounding set")
        if cap not in chosen:
            chosen.append(cap)
        ambient.append(cap)
    ordered = tuple(c for c in ALL_CAPABILITIES if c in chosen)
    ambient_ordered = tuple(c for c in ALL_CAPABILITIES if c in ambient)
    return CapabilitySets(ordered, ordered, ordered, ambient_ordered, ambient_ordered)

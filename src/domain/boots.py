"""Which records come from an earlier boot of the node.

A reboot ends every process and empties every tmpfs: a pod's infra process, its namespaces and mounts, a
container's processes, its monitor and the OCI runtime's state are gone, and a pid recorded before may name
an unrelated process of the new boot (start times count from boot, so pid plus start time is no identity
across boots either). Records carry the kernel's boot id from when they were made; the services settle
those of an earlier boot at start-up without asking the host about them.
"""


def from_earlier_boot(recorded: str, current: str) -> bool:
    """Whether a record made in boot `recorded` comes from a boot before `current`. A record from before
    boot ids were kept ("") or a node whose boot id is unknown ("") says nothing: the old checks apply."""
    return bool(recorded) and bool(current) and recorded != current

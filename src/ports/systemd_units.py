"""systemd's unit manager as the systemd cgroup driver needs it: transient slices for pods, transient scopes
that adopt running processes (a pod's infra process, a container's conmon), their resource properties, and
stopping them. The kubelet and cri-o name these units; systemd owns their cgroups."""

from collections.abc import Mapping, Sequence
from typing import Protocol

# The unit properties the driver sets and reads back: numbers (MemoryMax, CPUWeight, TasksMax,
# CPUQuotaPerSecUSec, CPUQuotaPeriodUSec, IOWeight, MemorySwapMax), CPU or memory node masks as index
# tuples (AllowedCPUs, AllowedMemoryNodes), text (Description) and flags (Delegate).
PropertyValue = int | str | bool | tuple[int, ...]

# systemd's "no limit" for the uint64 properties (MemoryMax, TasksMax, CPUQuotaPerSecUSec ...).
UNLIMITED = 2**64 - 1


class SystemdUnits(Protocol):
    def start_slice(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        """Start the transient slice `name` (its parent slices come with it) and wait until it is active.
        A slice that is already active is kept as it is."""
        ...

    def start_scope(
        self, name: str, slice_name: str, pids: Sequence[int], properties: Mapping[str, PropertyValue]
    ) -> None:
        """Start the transient scope `name` in `slice_name` holding `pids`, with Delegate=yes (the runtime or
        monitor inside may make sub-cgroups), and wait until it is active. When the scope is already
        active the pids are added to it."""
        ...

    def set_properties(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        """Change a running unit's properties at runtime (not persisted across systemd reloads of the
        unit files: the unit is transient). NotFound when the unit is not loaded."""
        ...

    def get_property(self, name: str, prop: str) -> PropertyValue:
        """A property of a loaded unit as systemd reports it. NotFound when the unit is not loaded."""
        ...

    def active(self, name: str) -> bool:
        """Whether the unit is loaded and active (or activating/reloading)."""
        ...

    def stop(self, name: str) -> None:
        """Stop the unit and wait until it is gone, killing what still runs in it. A unit that is not
        loaded is not an error."""
        ...

"""Creating and removing the cgroups a pod's processes live in (cgroupfs: v1 controllers or unified v2)."""

from typing import Protocol


class Cgroups(Protocol):
    def exists(self, path: str) -> bool:
        """`path` is absolute within the hierarchy, e.g. /kubepods/burstable/pod123."""
        ...

    def create(self, path: str) -> None:
        """Create it (and missing parents) in every controller; existing ones are kept."""
        ...

    def procs_files(self, path: str) -> list[str]:
        """The cgroup.procs files a process writes itself into to join `path`."""
        ...

    def remove(self, path: str) -> None:
        """Remove it from every controller; absent is not an error, a cgroup with processes is (Internal)."""
        ...

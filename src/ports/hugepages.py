"""What the node offers for hugepage limits: whether the OCI runtime's cgroup manager can set them, and which
page sizes the kernel has.

The kubelet sends a limit for every page size the node has (limit 0 when the pod asks for none). runc fails
the whole container when it cannot set one ("cannot set hugetlb limit"), e.g. on a hybrid host where the
hugetlb controller sits only in the cgroup2 tree that runc's v1 manager does not use for it."""

from typing import Protocol


class HugePages(Protocol):
    def controller_available(self) -> bool:
        """Whether the hugetlb controller is in the hierarchy the OCI runtime uses: a v1 hierarchy of its own
        on a v1 (or hybrid) host, the root's controllers on a v2 host."""
        ...

    def page_sizes(self) -> frozenset[str]:
        """The huge page sizes the kernel has, as the CRI writes them: "2MB", "1GB", "64KB"."""
        ...

"""The limits of a pod's cgroup from UpdatePodSandboxResources (in-place pod resize, KEP-1287).

The kubelet sends two LinuxContainerResources: `resources`, the sum of the containers' resources, and
`overhead`, what the runtime class adds. The pod cgroup gets their sum: shares add up; a memory limit or a CPU
quota exists only when `resources` has one (a pod whose containers are unlimited stays unlimited), and the
overhead's quota is scaled to the period of `resources`. cpusets and unified files come from `resources`;
hugepage limits add up per page size and are kept only for sizes the host can limit (the kubelet sends one
for every size the node has).
Zero (or empty) leaves a cgroup file as it is, as runc does for container updates (a hugepage limit of 0
is written: no pages of that size).

Both are the typed `Resources` a container's limits are too. `resources_from_record` reads them back from a
sandbox record, including records written before they were typed (the CRI's JSON mapping with proto field
names, 64-bit numbers as strings).
"""

from collections.abc import Mapping
from typing import Any

import structlog

from domain.container_config import HugepageLimit, Resources
from domain.errors import InvalidArgument
from domain.oci_spec import MAX_CPU_QUOTA, MAX_CPUS, MAX_NUMA_NODES, PAGE_SIZE, check_cpuset
from ports.cgroups import CgroupLimits

_log = structlog.get_logger("pycrio.sandboxes")
_NUMBERS = ("cpu_period", "cpu_quota", "cpu_shares", "memory_limit_in_bytes", "memory_swap_limit_in_bytes",
            "oom_score_adj")  # fmt: skip


def resources_from_record(record: Mapping[str, Any]) -> Resources:
    """Resources as a sandbox record keeps them: typed (unified as pairs) or, in older records, the CRI's
    JSON mapping (numbers as strings, unified as an object, absent fields left out)."""
    unified = record.get("unified") or ()
    pairs = unified.items() if isinstance(unified, Mapping) else unified
    return Resources(
        **{name: int(record.get(name, 0)) for name in _NUMBERS},
        cpuset_cpus=str(record.get("cpuset_cpus", "")),
        cpuset_mems=str(record.get("cpuset_mems", "")),
        hugepage_limits=tuple(
            HugepageLimit(str(h.get("page_size", "")), int(h.get("limit", 0)))
            for h in record.get("hugepage_limits") or ()
        ),
        unified=tuple(sorted((str(k), str(v)) for k, v in pairs)),
    )


def pod_cgroup_limits(
    overhead: Resources, resources: Resources, hugepage_sizes: frozenset[str] = frozenset()
) -> CgroupLimits:
    """The pod cgroup's limits; InvalidArgument (naming the field) for a value no cgroup can take.
    Hugepage limits are kept for `hugepage_sizes` (those the host can limit) and left out otherwise."""
    extra, base = _numbers(overhead, "overhead"), _numbers(resources, "resources")
    shares = base["cpu_shares"] + extra["cpu_shares"]
    quota = base["cpu_quota"]
    if quota > 0 and extra["cpu_quota"] > 0:
        period = base["cpu_period"] or 100_000
        quota += extra["cpu_quota"] * period // (extra["cpu_period"] or 100_000)
        if quota > MAX_CPU_QUOTA:
            raise InvalidArgument(
                f"cpu_quota: {quota} with the overhead is above the kernel's {MAX_CPU_QUOTA} us"
            )
    memory = base["memory_limit_in_bytes"]
    if memory > 0:
        memory += extra["memory_limit_in_bytes"]
    return CgroupLimits(
        cpu_shares=shares,
        cpu_quota_us=quota,
        cpu_period_us=base["cpu_period"],
        memory_limit_bytes=memory,
        cpuset_cpus=_cpu_list(resources, "cpuset_cpus"),
        cpuset_mems=_cpu_list(resources, "cpuset_mems"),
        unified=_unified(resources),
        hugepage_limits=_hugepages(overhead, resources, hugepage_sizes),
    )


def _numbers(fields: Resources, where: str) -> dict[str, int]:
    numbers = {}
    for name in ("cpu_shares", "cpu_quota", "cpu_period", "memory_limit_in_bytes"):
        value = int(getattr(fields, name))
        lowest = -1 if name == "cpu_quota" else 0  # -1: no quota
        if value < lowest:
            raise InvalidArgument(f"{where}.{name}: {value} is negative")
        numbers[name] = value
    if 0 < numbers["cpu_period"] < 1000 or numbers["cpu_period"] > 1_000_000:
        raise InvalidArgument(f"{where}.cpu_period: {numbers['cpu_period']} is outside 1000..1000000 us")
    if 0 < numbers["cpu_quota"] < 1000:
        raise InvalidArgument(f"{where}.cpu_quota: {numbers['cpu_quota']} is below the kernel's 1000 us")
    if numbers["cpu_quota"] > MAX_CPU_QUOTA:
        raise InvalidArgument(
            f"{where}.cpu_quota: {numbers['cpu_quota']} is above the kernel's {MAX_CPU_QUOTA} us"
        )
    return numbers


def _cpu_list(fields: Resources, name: str) -> str:
    value = str(getattr(fields, name)).strip()
    check_cpuset(f"resources.{name}", value, (MAX_CPUS if name == "cpuset_cpus" else MAX_NUMA_NODES) - 1)
    return value


def _unified(fields: Resources) -> tuple[tuple[str, str], ...]:
    entries = dict(fields.unified)
    for name in entries:
        if not name or "/" in name or name.startswith("."):
            raise InvalidArgument(f"resources.unified: {name!r} is not a cgroup file name")
    return tuple(sorted((str(k), str(v)) for k, v in entries.items()))


def _hugepages(
    overhead: Resources, resources: Resources, sizes: frozenset[str]
) -> tuple[tuple[str, int], ...]:
    """Per page size, the sum of both; the kubelet names every size the node has, 0 for none."""
    wanted: dict[str, int] = {}
    for where, fields in (("resources", resources), ("overhead", overhead)):
        for index, entry in enumerate(fields.hugepage_limits):
            name = f"{where}.hugepage_limits[{index}]"
            page, limit = entry.page_size, entry.limit
            if not PAGE_SIZE.match(page):
                raise InvalidArgument(f"{name}.page_size: {page!r} is not like 2MB")
            if limit < 0:
                raise InvalidArgument(f"{name}.limit: {limit} is negative")
            wanted[page] = wanted.get(page, 0) + limit
    dropped = sorted(page for page in wanted if page not in sizes)
    if dropped:
        _log.debug(
            "pod hugepage limits left out: no hugetlb controller or page size on this host", sizes=dropped
        )
    return tuple(sorted((page, limit) for page, limit in wanted.items() if page in sizes))

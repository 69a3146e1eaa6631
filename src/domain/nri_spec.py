"""Between the OCI runtime spec and NRI: the container a plugin is shown is read from the spec about to be
written for runc, and the merged adjustment of all plugins is written back into that spec before it is.
Resource updates from plugins become CRI resources: they take the same path as UpdateContainerResources.
Pure: dicts in, dicts out.
"""

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from domain.container_config import HugepageLimit, Resources
from domain.errors import InvalidArgument
from domain.nri import (
    HOOK_STAGES,
    REMOVAL_MARK,
    NriAdjustment,
    NriContainer,
    NriContainerState,
    NriDevice,
    NriHook,
    NriMount,
    NriResources,
    NriRlimit,
)

_DEVICE_TYPES = ("c", "b", "u", "p")


def resources_from_spec(resources: Mapping[str, Any]) -> NriResources:
    memory = resources.get("memory") or {}
    cpu = resources.get("cpu") or {}
    pids = resources.get("pids") or {}
    return NriResources(
        memory_limit=memory.get("limit"),
        memory_reservation=memory.get("reservation"),
        memory_swap=memory.get("swap"),
        memory_swappiness=memory.get("swappiness"),
        cpu_shares=cpu.get("shares"),
        cpu_quota=cpu.get("quota"),
        cpu_period=cpu.get("period"),
        cpuset_cpus=cpu.get("cpus"),
        cpuset_mems=cpu.get("mems"),
        pids_limit=pids.get("limit"),
        hugepage_limits=tuple((h["pageSize"], h["limit"]) for h in resources.get("hugepageLimits") or ()),
        unified=tuple((resources.get("unified") or {}).items()),
    )


def container_from_spec(
    container_id: str,
    sandbox_id: str,
    name: str,
    labels: Mapping[str, str],
    spec: Mapping[str, Any],
    state: NriContainerState = NriContainerState.UNKNOWN,
    **status: Any,
) -> NriContainer:
    """The container as NRI describes it, from the OCI spec pycrio wrote (or is about to write) for it."""
    process = spec.get("process") or {}
    linux = spec.get("linux") or {}
    hooks = spec.get("hooks") or {}
    return NriContainer(
        id=container_id,
        pod_sandbox_id=sandbox_id,
        name=name,
        state=state,
        labels=tuple(labels.items()),
        annotations=tuple((spec.get("annotations") or {}).items()),
        args=tuple(process.get("args") or ()),
        env=tuple(process.get("env") or ()),
        mounts=tuple(
            NriMount(m["destination"], m.get("type", ""), m.get("source", ""), tuple(m.get("options") or ()))
            for m in spec.get("mounts") or ()
        ),
        hooks=tuple(
            (
                stage,
                tuple(
                    NriHook(
                        h["path"], tuple(h.get("args") or ()), tuple(h.get("env") or ()), h.get("timeout")
                    )
                    for h in hooks[stage]
                ),
            )
            for stage in HOOK_STAGES
            if hooks.get(stage)
        ),
        devices=tuple(
            NriDevice(
                d["path"],
                d.get("type", ""),
                d.get("major", 0),
                d.get("minor", 0),
                d.get("fileMode"),
                d.get("uid"),
                d.get("gid"),
            )
            for d in linux.get("devices") or ()
        ),
        resources=resources_from_spec(linux.get("resources") or {}),
        oom_score_adj=process.get("oomScoreAdj"),
        cgroups_path=linux.get("cgroupsPath", ""),
        rlimits=tuple(NriRlimit(r["type"], r["hard"], r["soft"]) for r in process.get("rlimits") or ()),
        **status,
    )


def _unmarked(key: str) -> tuple[str, bool]:
    return (key[1:], True) if key.startswith(REMOVAL_MARK) else (key, False)


def _check_absolute(what: str, path: str) -> None:
    if not path.startswith("/") or "\0" in path:
        raise InvalidArgument(f"NRI adjustment: {what} {path!r} is not an absolute path")


def apply_adjustment(
    spec: Mapping[str, Any], adjustment: NriAdjustment, min_oom_score_adj: int
) -> dict[str, Any]:
    """A copy of `spec` with the plugins' merged adjustment applied. A removal mark on a key that the spec
    does not hold is no error. oom_score_adj is clamped to what the daemon may set (MACHINE.md)."""
    out: dict[str, Any] = copy.deepcopy(dict(spec))
    process = out.setdefault("process", {})
    linux = out.setdefault("linux", {})
    annotations = out.setdefault("annotations", {})
    for key, value in adjustment.annotations:
        name, removed = _unmarked(key)
        annotations.pop(name, None)
        if not removed:
            annotations[name] = value
    env = list(process.get("env") or ())
    for key, value in adjustment.env:
        name, removed = _unmarked(key)
        env = [e for e in env if e.split("=", 1)[0] != name]
        if not removed:
            env.append(f"{name}={value}")
    process["env"] = env
    if adjustment.args:
        process["args"] = list(adjustment.args)
    mounts = list(out.get("mounts") or ())
    for mount in adjustment.mounts:
        name, removed = _unmarked(mount.destination)
        _check_absolute("mount destination", name)
        mounts = [m for m in mounts if m.get("destination") != name]
        if not removed:
            mounts.append(
                {
                    "destination": name,
                    "type": mount.type or "bind",
                    "source": mount.source,
                    "options": list(mount.options),
                }
            )
    out["mounts"] = mounts
    _apply_devices(linux, adjustment.devices)
    if adjustment.hooks:
        hooks = out.setdefault("hooks", {})
        for stage, added in adjustment.hooks:
            for hook in added:
                _check_absolute("hook path", hook.path)
                entry: dict[str, Any] = {"path": hook.path}
                if hook.args:
                    entry["args"] = list(hook.args)
                if hook.env:
                    entry["env"] = list(hook.env)
                if hook.timeout is not None:
                    entry["timeout"] = hook.timeout
                hooks.setdefault(stage, []).append(entry)
    if adjustment.rlimits:
        rlimits = {r["type"]: r for r in process.get("rlimits") or ()}
        for limit in adjustment.rlimits:
            if not limit.type.startswith("RLIMIT_"):
                raise InvalidArgument(f"NRI adjustment: rlimit type {limit.type!r} is not an RLIMIT_ name")
            rlimits[limit.type] = {"type": limit.type, "hard": limit.hard, "soft": limit.soft}
        process["rlimits"] = list(rlimits.values())
    if adjustment.oom_score_adj is not None:
        if not -1000 <= adjustment.oom_score_adj <= 1000:
            raise InvalidArgument(
                f"NRI adjustment: oom_score_adj {adjustment.oom_score_adj} is outside -1000..1000"
            )
        process["oomScoreAdj"] = max(adjustment.oom_score_adj, min_oom_score_adj)
    if adjustment.cgroups_path:
        linux["cgroupsPath"] = adjustment.cgroups_path
    if adjustment.resources is not None:
        _apply_resources(linux.setdefault("resources", {}), adjustment.resources)
    return out


def _apply_devices(linux: dict[str, Any], devices: tuple[NriDevice, ...]) -> None:
    if not devices:
        return
    nodes = list(linux.get("devices") or ())
    rules = linux.setdefault("resources", {}).setdefault("devices", [])
    for device in devices:
        name, removed = _unmarked(device.path)
        _check_absolute("device path", name)
        nodes = [d for d in nodes if d.get("path") != name]
        if removed:
            continue
        if device.type not in _DEVICE_TYPES:
            raise InvalidArgument(f"NRI adjustment: device {name} has type {device.type!r} (c, b, u or p)")
        node: dict[str, Any] = {
            "path": name,
            "type": device.type,
            "major": device.major,
            "minor": device.minor,
        }
        for key, value in (("fileMode", device.file_mode), ("uid", device.uid), ("gid", device.gid)):
            if value is not None:
                node[key] = value
        nodes.append(node)
        # The device cgroup must let the container use the node it is given, as containerd does.
        rules.append(
            {
                "allow": True,
                "type": device.type,
                "major": device.major,
                "minor": device.minor,
                "access": "rwm",
            }
        )
    linux["devices"] = nodes


def _apply_resources(target: dict[str, Any], resources: NriResources) -> None:
    memory = {
        "limit": resources.memory_limit,
        "reservation": resources.memory_reservation,
        "swap": resources.memory_swap,
        "swappiness": resources.memory_swappiness,
    }
    cpu = {
        "shares": resources.cpu_shares,
        "quota": resources.cpu_quota,
        "period": resources.cpu_period,
        "cpus": resources.cpuset_cpus,
        "mems": resources.cpuset_mems,
    }
    for section, values in (("memory", memory), ("cpu", cpu)):
        present = {k: v for k, v in values.items() if v is not None}
        if present:
            target.setdefault(section, {}).update(present)
    if resources.pids_limit is not None:
        target["pids"] = {"limit": resources.pids_limit}
    if resources.hugepage_limits:
        limits = {h["pageSize"]: h for h in target.get("hugepageLimits") or ()}
        for size, limit in resources.hugepage_limits:
            limits[size] = {"pageSize": size, "limit": limit}
        target["hugepageLimits"] = list(limits.values())
    if resources.unified:
        target.setdefault("unified", {}).update(dict(resources.unified))


def nri_resources(resources: Resources) -> NriResources:
    """CRI resources as NRI shows them (0 / empty: not set)."""

    def opt(value: int) -> int | None:
        return value or None

    return NriResources(
        memory_limit=opt(resources.memory_limit_in_bytes),
        memory_swap=opt(resources.memory_swap_limit_in_bytes),
        cpu_shares=opt(resources.cpu_shares),
        cpu_quota=opt(resources.cpu_quota),
        cpu_period=opt(resources.cpu_period),
        cpuset_cpus=resources.cpuset_cpus or None,
        cpuset_mems=resources.cpuset_mems or None,
        hugepage_limits=tuple((h.page_size, h.limit) for h in resources.hugepage_limits),
        unified=resources.unified,
    )


def cri_resources(base: Resources, change: NriResources) -> Resources:
    """`base` with the fields NRI sets changed. Fields the CRI's update path cannot carry are refused."""
    unsupported = [
        name
        for name in ("memory_reservation", "memory_swappiness", "pids_limit")
        if getattr(change, name) is not None
    ]
    if unsupported:
        raise InvalidArgument(
            f"NRI update: {', '.join(unsupported)} cannot be updated on a live container here"
        )
    values: dict[str, Any] = {}
    for ours, theirs in (
        ("memory_limit_in_bytes", "memory_limit"),
        ("memory_swap_limit_in_bytes", "memory_swap"),
        ("cpu_shares", "cpu_shares"),
        ("cpu_quota", "cpu_quota"),
        ("cpu_period", "cpu_period"),
        ("cpuset_cpus", "cpuset_cpus"),
        ("cpuset_mems", "cpuset_mems"),
    ):
        value = getattr(change, theirs)
        if value is not None:
            values[ours] = value
    if change.hugepage_limits:
        limits = {h.page_size: h.limit for h in base.hugepage_limits}
        limits.update(dict(change.hugepage_limits))
        values["hugepage_limits"] = tuple(HugepageLimit(size, limit) for size, limit in limits.items())
    if change.unified:
        values["unified"] = tuple({**dict(base.unified), **dict(change.unified)}.items())
    return replace(base, **values)

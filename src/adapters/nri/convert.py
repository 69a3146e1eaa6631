"""NRI protobuf messages <-> the domain's NRI dataclasses. Protobuf stops here.

An adjustment or update carrying a field pycrio does not implement (proto/nri/nri.proto describes only what
it does) arrives as unknown fields; it is refused rather than silently dropped.
"""

from typing import Any

from google.protobuf.message import Message
from google.protobuf.unknown_fields import UnknownFieldSet

from adapters.nri.generated import nri_pb2 as pb
from domain.errors import InvalidArgument
from domain.nri import (
    HOOK_STAGES,
    NriAdjustment,
    NriContainer,
    NriDevice,
    NriEviction,
    NriHook,
    NriMount,
    NriOwner,
    NriPod,
    NriReply,
    NriRequest,
    NriResources,
    NriRlimit,
    NriUpdate,
)

_PB_STAGES = ("prestart", "create_runtime", "create_container", "start_container", "poststart", "poststop")
_STAGE_FIELDS = dict(zip(HOOK_STAGES, _PB_STAGES, strict=True))


def refuse_unknown_fields(message: Message, what: str) -> None:
    """Walk `message` and raise InvalidArgument naming the first unknown field."""
    unknown = UnknownFieldSet(message)
    if len(unknown):
        numbers = sorted({unknown[i].field_number for i in range(len(unknown))})
        raise InvalidArgument(
            f"{what}: {type(message).__name__} fields {numbers} are not supported by pycrio"
        )
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        if descriptor.message_type.GetOptions().map_entry:
            holds_messages = descriptor.message_type.fields_by_name["value"].message_type is not None
            values = list(value.values()) if holds_messages else []
        elif isinstance(value, Message):
            values = [value]
        else:
            values = list(value)
        for item in values:
            refuse_unknown_fields(item, what)


def _opt(message: Any, name: str) -> int | None:
    return getattr(message, name).value if message.HasField(name) else None


def resources_from_pb(message: pb.LinuxResources) -> NriResources:
    memory, cpu = message.memory, message.cpu
    return NriResources(
        memory_limit=_opt(memory, "limit"),
        memory_reservation=_opt(memory, "reservation"),
        memory_swap=_opt(memory, "swap"),
        memory_swappiness=_opt(memory, "swappiness"),
        cpu_shares=_opt(cpu, "shares"),
        cpu_quota=_opt(cpu, "quota"),
        cpu_period=_opt(cpu, "period"),
        cpuset_cpus=cpu.cpus or None,
        cpuset_mems=cpu.mems or None,
        pids_limit=message.pids.limit if message.HasField("pids") else None,
        hugepage_limits=tuple((h.page_size, h.limit) for h in message.hugepage_limits),
        unified=tuple(message.unified.items()),
    )


def resources_to_pb(resources: NriResources, out: pb.LinuxResources) -> None:
    for name, target, field in (
        ("memory_limit", out.memory, "limit"),
        ("memory_reservation", out.memory, "reservation"),
        ("memory_swap", out.memory, "swap"),
        ("memory_swappiness", out.memory, "swappiness"),
        ("cpu_shares", out.cpu, "shares"),
        ("cpu_quota", out.cpu, "quota"),
        ("cpu_period", out.cpu, "period"),
    ):
        value = getattr(resources, name)
        if value is not None:
            getattr(target, field).value = value
    if resources.cpuset_cpus:
        out.cpu.cpus = resources.cpuset_cpus
    if resources.cpuset_mems:
        out.cpu.mems = resources.cpuset_mems
    if resources.pids_limit is not None:
        out.pids.limit = resources.pids_limit
    for size, limit in resources.hugepage_limits:
        out.hugepage_limits.add(page_size=size, limit=limit)
    out.unified.update(dict(resources.unified))


def pod_to_pb(pod: NriPod) -> pb.PodSandbox:
    message = pb.PodSandbox(
        id=pod.id,
        name=pod.name,
        uid=pod.uid,
        namespace=pod.namespace,
        runtime_handler=pod.runtime_handler,
        pid=pod.pid,
        ips=list(pod.ips),
    )
    message.labels.update(dict(pod.labels))
    message.annotations.update(dict(pod.annotations))
    message.linux.cgroup_parent = pod.cgroup_parent
    message.linux.cgroups_path = pod.cgroups_path
    return message


def _hook_to_pb(hook: NriHook, out: pb.Hook) -> None:
    out.path = hook.path
    out.args.extend(hook.args)
    out.env.extend(hook.env)
    if hook.timeout is not None:
        out.timeout.value = hook.timeout


def _device_to_pb(device: NriDevice, out: pb.LinuxDevice) -> None:
    out.path, out.type, out.major, out.minor = device.path, device.type, device.major, device.minor
    for name in ("file_mode", "uid", "gid"):
        if getattr(device, name) is not None:
            getattr(out, name).value = getattr(device, name)


def container_to_pb(container: NriContainer) -> pb.Container:
    message = pb.Container(
        id=container.id,
        pod_sandbox_id=container.pod_sandbox_id,
        name=container.name,
        state=int(container.state),  # type: ignore[arg-type]
        args=list(container.args),
        env=list(container.env),
        pid=container.pid,
        created_at=container.created_at,
        started_at=container.started_at,
        finished_at=container.finished_at,
        exit_code=container.exit_code,
        status_reason=container.status_reason,
        status_message=container.status_message,
    )
    message.labels.update(dict(container.labels))
    message.annotations.update(dict(container.annotations))
    for m in container.mounts:
        message.mounts.add(destination=m.destination, type=m.type, source=m.source, options=list(m.options))
    for stage, hooks in container.hooks:
        for hook in hooks:
            _hook_to_pb(hook, getattr(message.hooks, _STAGE_FIELDS[stage]).add())
    for d in container.devices:
        _device_to_pb(d, message.linux.devices.add())
    if container.resources is not None:
        resources_to_pb(container.resources, message.linux.resources)
    if container.oom_score_adj is not None:
        message.linux.oom_score_adj.value = container.oom_score_adj
    message.linux.cgroups_path = container.cgroups_path
    for r in container.rlimits:
        message.rlimits.add(type=r.type, hard=r.hard, soft=r.soft)
    return message


def _hooks_from_pb(hooks: pb.Hooks) -> tuple[tuple[str, tuple[NriHook, ...]], ...]:
    out = []
    for stage, field in _STAGE_FIELDS.items():
        found = tuple(
            NriHook(h.path, tuple(h.args), tuple(h.env), h.timeout.value if h.HasField("timeout") else None)
            for h in getattr(hooks, field)
        )
        if found:
            out.append((stage, found))
    return tuple(out)


def adjustment_from_pb(message: pb.ContainerAdjustment) -> NriAdjustment:
    linux = message.linux
    return NriAdjustment(
        annotations=tuple(message.annotations.items()),
        mounts=tuple(NriMount(m.destination, m.type, m.source, tuple(m.options)) for m in message.mounts),
        env=tuple((e.key, e.value) for e in message.env),
        hooks=_hooks_from_pb(message.hooks),
        devices=tuple(
            NriDevice(d.path, d.type, d.major, d.minor, _opt(d, "file_mode"), _opt(d, "uid"), _opt(d, "gid"))
            for d in linux.devices
        ),
        resources=resources_from_pb(linux.resources) if linux.HasField("resources") else None,
        oom_score_adj=_opt(linux, "oom_score_adj"),
        cgroups_path=linux.cgroups_path,
        rlimits=tuple(NriRlimit(r.type, r.hard, r.soft) for r in message.rlimits),
        args=tuple(message.args),
    )


def adjustment_to_pb(adjustment: NriAdjustment) -> pb.ContainerAdjustment:
    message = pb.ContainerAdjustment(args=list(adjustment.args))
    message.annotations.update(dict(adjustment.annotations))
    for m in adjustment.mounts:
        message.mounts.add(destination=m.destination, type=m.type, source=m.source, options=list(m.options))
    for key, value in adjustment.env:
        message.env.add(key=key, value=value)
    for stage, hooks in adjustment.hooks:
        for hook in hooks:
            _hook_to_pb(hook, getattr(message.hooks, _STAGE_FIELDS[stage]).add())
    linux = message.linux
    for d in adjustment.devices:
        _device_to_pb(d, linux.devices.add())
    if adjustment.resources is not None:
        resources_to_pb(adjustment.resources, linux.resources)
    if adjustment.oom_score_adj is not None:
        linux.oom_score_adj.value = adjustment.oom_score_adj
    linux.cgroups_path = adjustment.cgroups_path
    for r in adjustment.rlimits:
        message.rlimits.add(type=r.type, hard=r.hard, soft=r.soft)
    return message


# The mergers' names for what a plugin set, as upstream's Field enum names them.
_SIMPLE_FIELDS = {
    "args": pb.Args, "memory_limit": pb.MemLimit, "memory_reservation": pb.MemReservation,
    "memory_swap": pb.MemSwapLimit, "memory_swappiness": pb.MemSwappiness, "cpu_shares": pb.CPUShares,
    "cpu_quota": pb.CPUQuota, "cpu_period": pb.CPUPeriod, "cpuset_cpus": pb.CPUSetCPUs,
    "cpuset_mems": pb.CPUSetMems, "pids_limit": pb.PidsLimit, "cgroups_path": pb.CgroupsPath,
    "oom_score_adj": pb.OomScoreAdj,
}  # fmt: skip
_COMPOUND_FIELDS = {
    "annotation": pb.Annotations, "mount": pb.Mounts, "device": pb.Devices, "env": pb.Env,
    "hugepage limit": pb.HugepageLimits, "unified": pb.CgroupsUnified, "rlimit": pb.Rlimits,
}  # fmt: skip


def owners_to_pb(owners: tuple[NriOwner, ...], out: pb.OwningPlugins) -> None:
    for owner in owners:
        fields = out.owners[owner.container_id]
        if owner.what in _COMPOUND_FIELDS:
            fields.compound[_COMPOUND_FIELDS[owner.what]].owners[owner.key] = owner.plugin
        else:
            fields.simple[_SIMPLE_FIELDS[owner.what]] = owner.plugin


def validation_to_pb(request: NriRequest) -> pb.ValidateContainerAdjustmentRequest:
    """What a validator is shown: upstream's PluginInstance splits "NN-name" into index and name."""
    message = pb.ValidateContainerAdjustmentRequest(
        pod=pod_to_pb(request.pod),
        adjust=adjustment_to_pb(request.adjustment or NriAdjustment()),
        update=[update_to_pb(u) for u in request.updates],
    )
    if request.container is not None:
        message.container.CopyFrom(container_to_pb(request.container))
    owners_to_pb(request.owners, message.owners)
    for plugin in request.plugins:
        index, _, name = plugin.partition("-")
        message.plugins.add(name=name, index=index)
    return message


def updates_from_pb(updates: Any) -> tuple[NriUpdate, ...]:
    return tuple(
        NriUpdate(u.container_id, resources_from_pb(u.linux.resources), u.ignore_failure) for u in updates
    )


def update_to_pb(update: NriUpdate) -> pb.ContainerUpdate:
    message = pb.ContainerUpdate(container_id=update.container_id, ignore_failure=update.ignore_failure)
    resources_to_pb(update.resources, message.linux.resources)
    return message


def evictions_from_pb(evictions: Any) -> tuple[NriEviction, ...]:
    return tuple(NriEviction(e.container_id, e.reason) for e in evictions)


def reply_from_pb(message: Message, plugin: str) -> NriReply:
    """A plugin's answer to any event as one NriReply (empty for notifications)."""
    refuse_unknown_fields(message, f"NRI plugin {plugin}")
    adjust = getattr(message, "adjust", None)
    return NriReply(
        adjustment=adjustment_from_pb(adjust) if adjust is not None else NriAdjustment(),
        updates=updates_from_pb(getattr(message, "update", ())),
        evictions=evictions_from_pb(getattr(message, "evict", ())),
        rejected=bool(getattr(message, "reject", False)),
        reason=str(getattr(message, "reason", "")),
    )

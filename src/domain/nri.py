"""NRI (Node Resource Interface) in the domain's own words: what plugins are told about pods and containers,
what they may ask for, and how the answers of several plugins are merged into one adjustment.

Plugins are consulted in index order and each sees the container as the plugins before it left it. Two
plugins setting the same thing (an annotation key, a mount destination, an env name, a device path, one
resource field, an rlimit type, the args) is a conflict and fails the request naming both plugins, as
upstream NRI's result collection does; a plugin may remove what an earlier one set by marking the key for
removal (a leading "-"), and then owns it. Pure: no I/O (the plugins are reached through ports/nri.py).
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace

from domain.errors import FailedPrecondition, InvalidArgument

# The NRI API pycrio speaks (containerd/nri's api package, as released in nri v0.12.x).
NRI_API_VERSION = "v0.12.1"
REMOVAL_MARK = "-"


class NriEvent(enum.IntEnum):
    """Upstream's Event enum: a plugin subscribes with the bit (1 << (value - 1))."""

    RUN_POD_SANDBOX = 1
    STOP_POD_SANDBOX = 2
    REMOVE_POD_SANDBOX = 3
    CREATE_CONTAINER = 4
    POST_CREATE_CONTAINER = 5
    START_CONTAINER = 6
    POST_START_CONTAINER = 7
    UPDATE_CONTAINER = 8
    POST_UPDATE_CONTAINER = 9
    STOP_CONTAINER = 10
    REMOVE_CONTAINER = 11
    UPDATE_POD_SANDBOX = 12
    POST_UPDATE_POD_SANDBOX = 13
    VALIDATE_CONTAINER_ADJUSTMENT = 14


# Events a plugin may subscribe to here: all of them.
SUPPORTED_EVENTS = frozenset(NriEvent)
ALL_EVENTS_MASK = sum(1 << (e - 1) for e in NriEvent)


def subscribed_events(mask: int) -> frozenset[NriEvent]:
    """The events of a Configure reply's mask; 0 means every event (upstream's rule)."""
    if mask == 0:
        return frozenset(NriEvent)
    if mask < 0 or mask & ~ALL_EVENTS_MASK:
        raise InvalidArgument(f"events: 0x{mask:x} names unknown events")
    return frozenset(e for e in NriEvent if mask & (1 << (e - 1)))


class NriContainerState(enum.IntEnum):
    UNKNOWN = 0
    CREATED = 1
    PAUSED = 2
    RUNNING = 3
    STOPPED = 4


@dataclass(frozen=True)
class NriResources:
    """Linux resources as NRI carries them: None is "not set" (unlike the CRI, where 0 is)."""

    memory_limit: int | None = None
    memory_reservation: int | None = None
    memory_swap: int | None = None
    memory_swappiness: int | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpuset_cpus: str | None = None
    cpuset_mems: str | None = None
    pids_limit: int | None = None
    hugepage_limits: tuple[tuple[str, int], ...] = ()  # (page size such as "2MB", bytes)
    unified: tuple[tuple[str, str], ...] = ()


SCALAR_RESOURCES = tuple(f.name for f in fields(NriResources) if f.name not in ("hugepage_limits", "unified"))


@dataclass(frozen=True)
class NriMount:
    destination: str
    type: str = ""
    source: str = ""
    options: tuple[str, ...] = ()


@dataclass(frozen=True)
class NriDevice:
    path: str
    type: str = ""
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass(frozen=True)
class NriHook:
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


# NRI's hook stages, in the OCI spec's spelling.
HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")


@dataclass(frozen=True)
class NriRlimit:
    type: str
    hard: int
    soft: int


@dataclass(frozen=True)
class NriPod:
    id: str
    name: str = ""
    uid: str = ""
    namespace: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    runtime_handler: str = ""
    cgroup_parent: str = ""
    cgroups_path: str = ""
    pid: int = 0
    ips: tuple[str, ...] = ()


@dataclass(frozen=True)
class NriContainer:
    id: str
    pod_sandbox_id: str
    name: str
    state: NriContainerState = NriContainerState.UNKNOWN
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    mounts: tuple[NriMount, ...] = ()
    hooks: tuple[tuple[str, tuple[NriHook, ...]], ...] = ()
    devices: tuple[NriDevice, ...] = ()
    resources: NriResources | None = None
    oom_score_adj: int | None = None
    cgroups_path: str = ""
    rlimits: tuple[NriRlimit, ...] = ()
    pid: int = 0
    created_at: int = 0
    started_at: int = 0
    finished_at: int = 0
    exit_code: int = 0
    status_reason: str = ""
    status_message: str = ""


@dataclass(frozen=True)
class NriAdjustment:
    """What plugins ask to change in a container being created (keys starting with "-" remove)."""

    annotations: tuple[tuple[str, str], ...] = ()
    mounts: tuple[NriMount, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    hooks: tuple[tuple[str, tuple[NriHook, ...]], ...] = ()
    devices: tuple[NriDevice, ...] = ()
    resources: NriResources | None = None
    oom_score_adj: int | None = None
    cgroups_path: str = ""
    rlimits: tuple[NriRlimit, ...] = ()
    args: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return self == NriAdjustment()


@dataclass(frozen=True)
class NriUpdate:
    container_id: str
    resources: NriResources
    ignore_failure: bool = False


@dataclass(frozen=True)
class NriEviction:
    container_id: str
    reason: str = ""


@dataclass(frozen=True)
class NriOwner:
    """Which plugin set one thing of a container: `what` as the mergers name it (an annotation, a
    resource field), `key` for the keyed ones (the annotation's key), "" otherwise."""

    container_id: str
    what: str
    key: str
    plugin: str


@dataclass(frozen=True)
class NriRequest:
    """One event for one plugin: the pod, the container (container events) and, for UpdateContainer and
    UpdatePodSandbox, the resources asked for (and the pod's overhead). ValidateContainerAdjustment also
    carries the merged adjustment, the updates of other containers, who set what, and every plugin
    consulted (their "NN-name" names)."""

    event: NriEvent
    pod: NriPod
    container: NriContainer | None = None
    resources: NriResources | None = None
    overhead: NriResources | None = None
    adjustment: NriAdjustment | None = None
    updates: tuple[NriUpdate, ...] = ()
    owners: tuple[NriOwner, ...] = ()
    plugins: tuple[str, ...] = ()


@dataclass(frozen=True)
class NriReply:
    adjustment: NriAdjustment = field(default_factory=NriAdjustment)
    updates: tuple[NriUpdate, ...] = ()
    evictions: tuple[NriEviction, ...] = ()
    rejected: bool = False  # a validator's verdict on an adjustment
    reason: str = ""


def _unmarked(key: str) -> tuple[str, bool]:
    if key.startswith(REMOVAL_MARK):
        return key[len(REMOVAL_MARK) :], True
    return key, False


class AdjustmentMerger:
    """Collects the adjustments of the plugins consulted for one CreateContainer, in order, and keeps the
    container as the next plugin must see it."""

    def __init__(self, container: NriContainer) -> None:
        self.container = container
        self._owners: dict[tuple[str, str], str] = {}
        self._annotations: dict[str, str | None] = {}  # None: removed
        self._mounts: dict[str, NriMount | None] = {}
        self._env: dict[str, str | None] = {}
        self._devices: dict[str, NriDevice | None] = {}
        self._rlimits: dict[str, NriRlimit] = {}
        self._hooks: dict[str, list[NriHook]] = {}
        self._resources: dict[str, object] = {}
        self._hugepages: dict[str, int] = {}
        self._unified: dict[str, str] = {}
        self._oom: int | None = None
        self._cgroups_path = ""
        self._args: tuple[str, ...] = ()

    def owners(self) -> tuple[NriOwner, ...]:
        """Who set what in the container (for validators)."""
        return tuple(NriOwner(self.container.id, what, key, p) for (what, key), p in self._owners.items())

    def _claim(self, what: str, key: str, plugin: str) -> None:
        owner = self._owners.setdefault((what, key), plugin)
        if owner != plugin:
            name = f"{what} {key!r}" if key else what
            raise FailedPrecondition(f"NRI plugins {owner} and {plugin} both adjust {name} of the container")

    def add(self, adjustment: NriAdjustment, plugin: str) -> None:
        """Merge one plugin's adjustment; FailedPrecondition names both plugins on a conflict."""
        for key, value in adjustment.annotations:
            name, removed = _unmarked(key)
            self._claim("annotation", name, plugin)
            self._annotations[name] = None if removed else value
        for mount in adjustment.mounts:
            name, removed = _unmarked(mount.destination)
            self._claim("mount", name, plugin)
            self._mounts[name] = None if removed else mount
        for key, value in adjustment.env:
            name, removed = _unmarked(key)
            if not name or "=" in name:
                raise InvalidArgument(f"NRI plugin {plugin}: env name {key!r} is not a variable name")
            self._claim("env", name, plugin)
            self._env[name] = None if removed else value
        for device in adjustment.devices:
            name, removed = _unmarked(device.path)
            self._claim("device", name, plugin)
            self._devices[name] = None if removed else device
        for limit in adjustment.rlimits:
            self._claim("rlimit", limit.type, plugin)
            self._rlimits[limit.type] = limit
        for stage, hooks in adjustment.hooks:
            if stage not in HOOK_STAGES:
                raise InvalidArgument(f"NRI plugin {plugin}: unknown hook stage {stage!r}")
            self._hooks.setdefault(stage, []).extend(hooks)  # hooks add up, as upstream
        if adjustment.resources is not None:
            self._add_resources(adjustment.resources, plugin)
        if adjustment.oom_score_adj is not None:
            self._claim("oom_score_adj", "", plugin)
            self._oom = adjustment.oom_score_adj
        if adjustment.cgroups_path:
            self._claim("cgroups_path", "", plugin)
            self._cgroups_path = adjustment.cgroups_path
        if adjustment.args:
            args = adjustment.args[1:] if adjustment.args[0] == "" else adjustment.args
            self._claim("args", "", plugin)
            self._args = tuple(args)
        self.container = apply_to_container(self.container, adjustment)

    def _add_resources(self, resources: NriResources, plugin: str) -> None:
        for name in SCALAR_RESOURCES:
            value = getattr(resources, name)
            if value is not None:
                self._claim(name, "", plugin)
                self._resources[name] = value
        for size, limit in resources.hugepage_limits:
            self._claim("hugepage limit", size, plugin)
            self._hugepages[size] = limit
        for key, value in resources.unified:
            self._claim("unified", key, plugin)
            self._unified[key] = value

    def merged(self) -> NriAdjustment:
        """The one adjustment to apply: removals keep their marks, everything else its final value."""

        def marked(items: Mapping[str, object]) -> list[str]:
            return [REMOVAL_MARK + k for k, v in items.items() if v is None]

        resources = None
        if self._resources or self._hugepages or self._unified:
            resources = replace(
                NriResources(),
                **self._resources,  # type: ignore[arg-type]
                hugepage_limits=tuple(self._hugepages.items()),
                unified=tuple(self._unified.items()),
            )
        return NriAdjustment(
            annotations=tuple((k, v) for k, v in self._annotations.items() if v is not None)
            + tuple((k, "") for k in marked(self._annotations)),
            mounts=tuple(m for m in self._mounts.values() if m is not None)
            + tuple(NriMount(destination=k) for k in marked(self._mounts)),
            env=tuple((k, v) for k, v in self._env.items() if v is not None)
            + tuple((k, "") for k in marked(self._env)),
            hooks=tuple((stage, tuple(hooks)) for stage, hooks in self._hooks.items()),
            devices=tuple(d for d in self._devices.values() if d is not None)
            + tuple(NriDevice(path=k) for k in marked(self._devices)),
            resources=resources,
            oom_score_adj=self._oom,
            cgroups_path=self._cgroups_path,
            rlimits=tuple(self._rlimits.values()),
            args=self._args,
        )


def merge_resources(base: NriResources | None, change: NriResources) -> NriResources:
    """`change`'s set fields over `base`."""
    values = {name: getattr(change, name) for name in SCALAR_RESOURCES if getattr(change, name) is not None}
    merged = replace(base or NriResources(), **values)
    if change.hugepage_limits:
        pages = {**dict(merged.hugepage_limits), **dict(change.hugepage_limits)}
        merged = replace(merged, hugepage_limits=tuple(pages.items()))
    if change.unified:
        merged = replace(merged, unified=tuple({**dict(merged.unified), **dict(change.unified)}.items()))
    return merged


class UpdateMerger:
    """Collects the resource updates plugins ask for, per container, with the same ownership rule."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, str, str], str] = {}  # (container id, what, key) -> plugin
        self._updates: dict[str, NriUpdate] = {}

    def owners(self) -> tuple[NriOwner, ...]:
        return tuple(NriOwner(cid, what, key, p) for (cid, what, key), p in self._owners.items())

    def add(self, updates: tuple[NriUpdate, ...], plugin: str) -> None:
        for update in updates:
            if not update.container_id:
                raise InvalidArgument(f"NRI plugin {plugin}: an update names no container")
            res = update.resources
            keys = [(n, "") for n in SCALAR_RESOURCES if getattr(res, n) is not None]
            keys += [("hugepage limit", size) for size, _ in res.hugepage_limits]
            keys += [("unified", key) for key, _ in res.unified]
            for what, key in keys:
                owner = self._owners.setdefault((update.container_id, what, key), plugin)
                if owner != plugin:
                    name = f"{what} {key}" if key else what
                    raise FailedPrecondition(
                        f"NRI plugins {owner} and {plugin} both update {name} "
                        f"of container {update.container_id}"
                    )
            known = self._updates.get(update.container_id)
            self._updates[update.container_id] = NriUpdate(
                update.container_id,
                merge_resources(known.resources if known else None, res),
                (known.ignore_failure if known else True) and update.ignore_failure,
            )

    def updates(self) -> list[NriUpdate]:
        return list(self._updates.values())


def apply_to_container(container: NriContainer, adjustment: NriAdjustment) -> NriContainer:
    """The container as the next plugin sees it once `adjustment` is applied."""
    annotations = dict(container.annotations)
    for key, value in adjustment.annotations:
        name, removed = _unmarked(key)
        annotations.pop(name, None)
        if not removed:
            annotations[name] = value
    env = [e for e in container.env]
    for key, value in adjustment.env:
        name, removed = _unmarked(key)
        env = [e for e in env if e.split("=", 1)[0] != name]
        if not removed:
            env.append(f"{name}={value}")
    mounts = list(container.mounts)
    for mount in adjustment.mounts:
        name, removed = _unmarked(mount.destination)
        mounts = [m for m in mounts if m.destination != name]
        if not removed:
            mounts.append(mount)
    devices = list(container.devices)
    for device in adjustment.devices:
        name, removed = _unmarked(device.path)
        devices = [d for d in devices if d.path != name]
        if not removed:
            devices.append(device)
    rlimits = {r.type: r for r in container.rlimits}
    rlimits.update({r.type: r for r in adjustment.rlimits})
    hooks = {stage: list(h) for stage, h in container.hooks}
    for stage, added in adjustment.hooks:
        hooks.setdefault(stage, []).extend(added)
    resources = container.resources
    if adjustment.resources is not None:
        resources = merge_resources(resources, adjustment.resources)
    args = container.args
    if adjustment.args:
        args = adjustment.args[1:] if adjustment.args[0] == "" else adjustment.args
    return replace(
        container,
        annotations=tuple(annotations.items()),
        env=tuple(env),
        mounts=tuple(mounts),
        devices=tuple(devices),
        rlimits=tuple(rlimits.values()),
        hooks=tuple((s, tuple(h)) for s, h in hooks.items()),
        resources=resources,
        oom_score_adj=container.oom_score_adj
        if adjustment.oom_score_adj is None
        else adjustment.oom_score_adj,
        cgroups_path=adjustment.cgroups_path or container.cgroups_path,
        args=tuple(args),
    )

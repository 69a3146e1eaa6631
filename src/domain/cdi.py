"""Container Device Interface (CDI, spec versions 0.1.0 to 1.1.0): device names resolved to OCI spec edits.

A device is asked for by its fully qualified name `vendor.com/class=name`, in CreateContainer's
`CDI_devices` or in a `cdi.k8s.io/<key>` annotation (comma-separated names; the older way, still sent by
DRA drivers). Spec files (JSON or YAML documents, read by the CdiSpecs port) describe each kind's devices
and the edits that expose them. This module checks spec documents as strictly as the reference library
(tags.cncf.io/container-device-interface: unknown fields, a version older than the fields it uses, bad
names), resolves names the way its cache does (a later spec directory wins; two files of one directory
defining the same device make that device unusable), and merges the edits into the OCI spec: env (same
key replaces), device nodes with their cgroup rule, mounts (same destination replaces; sorted so parents
come first), hooks, additional gids and Intel RDT. Pure: device numbers that a spec leaves out come from
the host through the caller.
"""

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from domain.document_fields import fields, integer, string, string_map, strings
from domain.errors import InvalidArgument, NotFound
from domain.oci_hooks import oci_hook

if TYPE_CHECKING:  # oci_spec calls this module; its HostDevice is the one word for a host's device node
    from domain.oci_spec import HostDevice

CURRENT_VERSION = "1.1.0"
# Newest first, as the reference library orders them.
KNOWN_VERSIONS = ("1.1.0", "1.0.0", "0.8.0", "0.7.0", "0.6.0", "0.5.0", "0.4.0", "0.3.0", "0.2.0", "0.1.0")
ANNOTATION_PREFIX = "cdi.k8s.io/"
HOOK_STAGES = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
# A request is bounded: the kubelet asks for a handful of devices per container.
MAX_REQUESTED_DEVICES = 128

_NAME_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_DEVICE_CHARS = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")


@dataclass(frozen=True)
class DeviceNode:
    path: str
    host_path: str = ""  # "" = the same as path
    type: str = ""  # "" (from the host), "b", "c", "u" or "p"
    major: int = 0
    minor: int = 0
    file_mode: int | None = None
    permissions: str = ""  # "" = rwm; "none" = no access
    uid: int | None = None
    gid: int | None = None

    @property
    def source(self) -> str:
        return self.host_path or self.path


@dataclass(frozen=True)
class CdiMount:
    host_path: str
    container_path: str
    options: tuple[str, ...] = ()
    type: str = ""


@dataclass(frozen=True)
class CdiHook:
    hook_name: str
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@dataclass(frozen=True)
class ContainerEdits:
    env: tuple[str, ...] = ()
    device_nodes: tuple[DeviceNode, ...] = ()
    mounts: tuple[CdiMount, ...] = ()
    hooks: tuple[CdiHook, ...] = ()
    additional_gids: tuple[int, ...] = ()
    intel_rdt: tuple[tuple[str, Any], ...] = ()  # OCI linux.intelRdt fields
    net_devices: tuple[tuple[str, str], ...] = ()  # (host interface, name in the container)

    def empty(self) -> bool:
        return self == ContainerEdits()


@dataclass(frozen=True)
class CdiSpec:
    """One valid spec file."""

    path: str
    priority: int  # the index of its directory; a later directory wins
    kind: str
    edits: ContainerEdits
    devices: Mapping[str, ContainerEdits] = field(default_factory=dict)

    @property
    def vendor(self) -> str:
        return self.kind.partition("/")[0]

    def qualified(self, device: str) -> str:
        return f"{self.kind}={device}"


@dataclass(frozen=True)
class SpecError:
    """A spec file that could not be used, and why."""

    path: str
    message: str


@dataclass(frozen=True)
class CdiSpecSet:
    """What the spec directories hold right now: the valid specs and the broken files."""

    specs: tuple[CdiSpec, ...] = ()
    errors: tuple[SpecError, ...] = ()


@dataclass(frozen=True)
class ResolvedEdits:
    """The edits to make for a request, each with what asked for it (a device, or a spec's common edits)."""

    parts: tuple[tuple[str, ContainerEdits], ...] = ()

    def device_sources(self) -> tuple[str, ...]:
        """Host paths of device nodes whose type or numbers the spec leaves to the host."""
        return tuple(
            node.source
            for _, edits in self.parts
            for node in edits.device_nodes
            if not (node.type and (node.major or node.type == "p"))
        )


# --- names ------------------------------------------------------------------------------------------------


def _check_vendor_or_class(what: str, name: str, device: str) -> None:
    if not name or not name[0].isascii() or not name[0].isalpha():
        raise InvalidArgument(f"CDI device {device!r}: {what} {name!r} must start with a letter")
    if not _NAME_CHARS.match(name) or not name[-1].isalnum():
        raise InvalidArgument(
            f"CDI device {device!r}: {what} {name!r} may hold letters, digits, '_', '-' and '.', "
            "and must end with a letter or digit"
        )


def _check_device_name(name: str, device: str) -> None:
    if not _DEVICE_CHARS.match(name) or not name[-1].isalnum() or not name.isascii():
        raise InvalidArgument(
            f"CDI device {device!r}: name {name!r} must start and end with a letter or digit and hold only "
            "letters, digits, '_', '-', '.' and ':'"
        )


def parse_qualified_name(device: str) -> tuple[str, str, str]:
    """`vendor.com/class=name` as (vendor, class, name); InvalidArgument naming the device otherwise."""
    qualifier, sep, name = device.partition("=")
    vendor, slash, class_ = qualifier.partition("/")
    if not sep or not slash or not vendor or not class_ or not name or device.startswith("/"):
        raise InvalidArgument(f"CDI device {device!r}: not a qualified name like vendor.com/class=name")
    _check_vendor_or_class("vendor", vendor, device)
    _check_vendor_or_class("class", class_, device)
    _check_device_name(name, device)
    return vendor, class_, name


def requested_devices(cdi_devices: Iterable[str], annotations: Mapping[str, str]) -> tuple[str, ...]:
    """The CDI_devices field, then devices named in `cdi.k8s.io/*` annotations that the field lacks."""
    requested: list[str] = []
    for index, name in enumerate(cdi_devices):
        if not name:
            raise InvalidArgument(f"CDI_devices[{index}].name: empty")
        if name not in requested:
            requested.append(name)
    for key in sorted(annotations):
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        for name in annotations[key].split(","):
            name = name.strip()
            try:
                parse_qualified_name(name)
            except InvalidArgument as err:
                raise InvalidArgument(f"annotations[{key!r}]: {err}") from None
            if name not in requested:
                requested.append(name)
    if len(requested) > MAX_REQUESTED_DEVICES:
        raise InvalidArgument(f"CDI_devices: {len(requested)} devices, at most {MAX_REQUESTED_DEVICES}")
    for name in requested:
        parse_qualified_name(name)
    return tuple(requested)


# --- spec documents ---------------------------------------------------------------------------------------


def _env(values: tuple[str, ...], where: str) -> tuple[str, ...]:
    for value in values:
        if value.find("=") <= 0:
            raise InvalidArgument(f"{where}: {value!r} is not NAME=value")
    return values


def _device_node(raw: Any, where: str) -> DeviceNode:
    raw = fields(raw, where, {"path", "hostPath", "type", "major", "minor", "fileMode", "permissions",
                               "uid", "gid"}, {"path"})  # fmt: skip
    node = DeviceNode(
        path=string(raw.get("path"), f"{where}.path"),
        host_path=string(raw.get("hostPath"), f"{where}.hostPath"),
        type=string(raw.get("type"), f"{where}.type"),
        major=integer(raw.get("major"), f"{where}.major", 0, 2**32 - 1) or 0,
        minor=integer(raw.get("minor"), f"{where}.minor", 0, 2**32 - 1) or 0,
        file_mode=integer(raw.get("fileMode"), f"{where}.fileMode", 0, 0o7777),
        permissions=string(raw.get("permissions"), f"{where}.permissions"),
        uid=integer(raw.get("uid"), f"{where}.uid", 0, 2**32 - 1),
        gid=integer(raw.get("gid"), f"{where}.gid", 0, 2**32 - 1),
    )
    if not node.path:
        raise InvalidArgument(f"{where}.path: empty")
    if node.type not in ("", "b", "c", "u", "p"):
        raise InvalidArgument(f"{where}.type: {node.type!r} is not b, c, u or p")
    if node.permissions not in ("", "none") and node.permissions.strip("rwm"):
        raise InvalidArgument(f"{where}.permissions: {node.permissions!r} may only hold r, w and m (or none)")
    return node


def _mount(raw: Any, where: str) -> CdiMount:
    raw = fields(raw, where, {"hostPath", "containerPath", "options", "type"}, {"hostPath", "containerPath"})
    mount = CdiMount(
        host_path=string(raw.get("hostPath"), f"{where}.hostPath"),
        container_path=string(raw.get("containerPath"), f"{where}.containerPath"),
        options=strings(raw.get("options"), f"{where}.options"),
        type=string(raw.get("type"), f"{where}.type"),
    )
    if not mount.host_path or not mount.container_path:
        raise InvalidArgument(f"{where}: hostPath and containerPath must not be empty")
    return mount


def _hook(raw: Any, where: str) -> CdiHook:
    raw = fields(raw, where, {"hookName", "path", "args", "env", "timeout"}, {"hookName", "path"})
    hook = CdiHook(
        hook_name=string(raw.get("hookName"), f"{where}.hookName"),
        path=string(raw.get("path"), f"{where}.path"),
        args=strings(raw.get("args"), f"{where}.args"),
        env=_env(strings(raw.get("env"), f"{where}.env"), f"{where}.env"),
        timeout=integer(raw.get("timeout"), f"{where}.timeout", 1, 2**31 - 1),
    )
    if hook.hook_name not in HOOK_STAGES:
        raise InvalidArgument(f"{where}.hookName: {hook.hook_name!r} is not one of {', '.join(HOOK_STAGES)}")
    if not hook.path:
        raise InvalidArgument(f"{where}.path: empty")
    return hook


def _edits(raw: Any, where: str) -> ContainerEdits:
    if raw is None:
        return ContainerEdits()
    raw = fields(raw, where, {"env", "deviceNodes", "netDevices", "hooks", "mounts", "intelRdt",
                               "additionalGids"})  # fmt: skip
    rdt: tuple[tuple[str, Any], ...] = ()
    if raw.get("intelRdt") is not None:
        allowed = {"closID", "l3CacheSchema", "memBwSchema", "schemata", "enableMonitoring"}
        rdt_raw = fields(raw["intelRdt"], f"{where}.intelRdt", allowed)
        rdt = tuple(sorted(rdt_raw.items()))
    net_devices = []
    for index, entry in enumerate(raw.get("netDevices") or ()):
        entry = fields(entry, f"{where}.netDevices[{index}]", {"hostInterfaceName", "name"},
                        {"hostInterfaceName", "name"})  # fmt: skip
        net_devices.append((str(entry["hostInterfaceName"]), str(entry["name"])))
    return ContainerEdits(
        env=_env(strings(raw.get("env"), f"{where}.env"), f"{where}.env"),
        device_nodes=tuple(
            _device_node(n, f"{where}.deviceNodes[{i}]")
            for i, n in enumerate(_list(raw, "deviceNodes", where))
        ),
        mounts=tuple(_mount(m, f"{where}.mounts[{i}]") for i, m in enumerate(_list(raw, "mounts", where))),
        hooks=tuple(_hook(h, f"{where}.hooks[{i}]") for i, h in enumerate(_list(raw, "hooks", where))),
        additional_gids=tuple(
            integer(g, f"{where}.additionalGids[{i}]", 0, 2**32 - 1) or 0
            for i, g in enumerate(_list(raw, "additionalGids", where))
        ),
        intel_rdt=rdt,
        net_devices=tuple(net_devices),
    )


def _list(raw: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"{where}.{key}: expected a list")
    return value


def _minimum_version(
    document: Mapping[str, Any], kind: str, edits: list[ContainerEdits], devices: list[dict[str, Any]]
) -> str:
    """The oldest spec version that has every field the document uses (the reference library's rules)."""
    rdt_fields = {key for e in edits for key, _ in e.intel_rdt}
    if rdt_fields & {"schemata", "enableMonitoring"} or any(e.net_devices for e in edits):
        return "1.1.0"
    if rdt_fields or any(e.additional_gids for e in edits):
        return "0.7.0"
    annotated = document.get("annotations") or any(d.get("annotations") for d in devices)
    if annotated or "." in kind.partition("/")[2]:
        return "0.6.0"
    names = [str(d.get("name", "")) for d in devices]
    if any(n[:1].isdigit() for n in names) or any(n.host_path for e in edits for n in e.device_nodes):
        return "0.5.0"
    if any(m.type for e in edits for m in e.mounts):
        return "0.4.0"
    return "0.3.0"


def parse_spec(document: Any, path: str, priority: int) -> CdiSpec:
    """A spec document (JSON or YAML, decoded) checked strictly; InvalidArgument says what is wrong."""
    raw = fields(document, "spec", {"cdiVersion", "kind", "annotations", "devices", "containerEdits"},
                  {"cdiVersion", "kind", "devices"})  # fmt: skip
    version = string(raw["cdiVersion"], "cdiVersion").removeprefix("v")
    if version not in KNOWN_VERSIONS:
        raise InvalidArgument(
            f"cdiVersion: {raw['cdiVersion']!r} is not a known CDI version (up to {CURRENT_VERSION})"
        )
    kind = string(raw["kind"], "kind")
    vendor, slash, class_ = kind.partition("/")
    if not slash:
        raise InvalidArgument(f"kind: {kind!r} is not vendor.com/class")
    _check_vendor_or_class("vendor", vendor, kind)
    _check_vendor_or_class("class", class_, kind)
    string_map(raw.get("annotations"), "annotations")
    edits = _edits(raw.get("containerEdits"), "containerEdits")
    if not isinstance(raw["devices"], list):
        raise InvalidArgument("devices: expected a list")
    devices: dict[str, ContainerEdits] = {}
    raw_devices: list[dict[str, Any]] = []
    for index, entry in enumerate(raw["devices"]):
        where = f"devices[{index}]"
        entry = fields(entry, where, {"name", "annotations", "containerEdits"}, {"name", "containerEdits"})
        raw_devices.append(entry)
        name = string(entry["name"], f"{where}.name")
        _check_device_name(name, f"{kind}={name}")
        string_map(entry.get("annotations"), f"{where}.annotations")
        device_edits = _edits(entry["containerEdits"], f"{where}.containerEdits")
        if device_edits.empty():
            raise InvalidArgument(f"{where}: device {name!r} has no container edits")
        if name in devices:
            raise InvalidArgument(f"{where}: device {name!r} is defined twice")
        devices[name] = device_edits
    if not devices:
        raise InvalidArgument("devices: a spec must define at least one device")
    needed = _minimum_version(raw, kind, [edits, *devices.values()], raw_devices)
    if KNOWN_VERSIONS.index(needed) < KNOWN_VERSIONS.index(version):
        raise InvalidArgument(
            f"cdiVersion: {version} is too old for the fields used; it must be at least {needed}"
        )
    return CdiSpec(path=path, priority=priority, kind=kind, edits=edits, devices=devices)


# --- resolution -------------------------------------------------------------------------------------------


def resolve(specs: CdiSpecSet, requested: Iterable[str]) -> ResolvedEdits:
    """The edits for the requested devices: each spec's common edits once, then each device's own.

    A device defined in a later directory replaces one of an earlier directory; defined twice in one
    directory it is unusable. An unknown device is NotFound naming it and any spec file that is broken.
    """
    found: dict[str, tuple[CdiSpec, ContainerEdits]] = {}
    conflicts: dict[str, list[str]] = {}
    for spec in specs.specs:
        for name, edits in spec.devices.items():
            qualified = spec.qualified(name)
            other = found.get(qualified)
            if other is not None and other[0].priority > spec.priority:
                continue
            if other is not None and other[0].priority == spec.priority:
                conflicts.setdefault(qualified, [other[0].path]).append(spec.path)
            found[qualified] = (spec, edits)
    parts: list[tuple[str, ContainerEdits]] = []
    seen_specs: set[str] = set()
    for device in requested:
        if device in conflicts:
            files = ", ".join(conflicts[device])
            raise InvalidArgument(
                f"CDI device {device}: defined in several spec files of one directory ({files})"
            )
        entry = found.get(device)
        if entry is None:
            broken = "; ".join(f"{e.path}: {e.message}" for e in specs.errors[:3])
            why = f" (broken spec files: {broken})" if broken else ""
            raise NotFound(f"CDI device {device}: not defined by any CDI spec{why}")
        spec, edits = entry
        if spec.path not in seen_specs:
            seen_specs.add(spec.path)
            if not spec.edits.empty():
                parts.append((f"CDI spec {spec.path}", spec.edits))
        parts.append((f"CDI device {device}", edits))
    return ResolvedEdits(tuple(parts))


# --- the OCI spec -----------------------------------------------------------------------------------------


def _check_path(where: str, path: str) -> None:
    if not path.startswith("/") or ".." in path.split("/"):
        raise InvalidArgument(f"{where}: {path!r} must be an absolute path without '..'")


def _oci_device(
    source: str, node: DeviceNode, host: Mapping[str, "HostDevice"], user: Mapping[str, Any]
) -> dict[str, Any]:
    found = host.get(node.source)
    minimal = bool(node.type) and (node.major != 0 or node.type == "p")
    kind, major, minor, mode = node.type, node.major, node.minor, node.file_mode
    if not minimal:
        if found is None:
            raise InvalidArgument(f"{source}: device node {node.source!r} does not exist on the host")
        kind = kind or found.type
        if kind != found.type and not (kind == "u" and found.type == "c"):
            raise InvalidArgument(f"{source}: {node.source!r} is type {found.type}, the spec says {kind}")
        if kind != "p" and not major:
            major, minor = found.major, found.minor
    if mode is None and found is not None:
        mode = found.file_mode
    device: dict[str, Any] = {"path": node.path, "type": kind, "major": major, "minor": minor}
    if mode is not None:
        device["fileMode"] = mode
    uid = node.uid if node.uid is not None else (user.get("uid") or None)
    gid = node.gid if node.gid is not None else (user.get("gid") or None)
    if uid is not None:
        device["uid"] = uid
    if gid is not None:
        device["gid"] = gid
    return device


def _path_depth(mount: Mapping[str, Any]) -> int:
    parts = [p for p in str(mount.get("destination", "")).split("/") if p and p != "."]
    return len(parts)


def apply_edits(spec: dict[str, Any], resolved: ResolvedEdits, host: Mapping[str, "HostDevice"]) -> None:
    """Merge the resolved edits into the OCI spec (in place), in the reference library's way."""
    process = spec.setdefault("process", {})
    user = process.setdefault("user", {})
    linux = spec.setdefault("linux", {})
    for source, edits in resolved.parts:
        if edits.net_devices or any(k in ("schemata", "enableMonitoring") for k, _ in edits.intel_rdt):
            raise InvalidArgument(
                f"{source}: netDevices and intelRdt schemata/enableMonitoring need runtime-spec 1.2, "
                "which the configured OCI runtime does not speak"
            )
        env = process.setdefault("env", [])
        for entry in edits.env:
            key = entry.partition("=")[0]
            index = next((i for i, e in enumerate(env) if e.partition("=")[0] == key), None)
            if index is None:
                env.append(entry)
            else:
                env[index] = entry
        for node in edits.device_nodes:
            _check_path(f"{source}: device node path", node.path)
            device = _oci_device(source, node, host, user)
            devices = [d for d in linux.get("devices", []) if d["path"] != device["path"]]
            linux["devices"] = [*devices, device]
            if device["type"] in ("b", "c"):
                access = {"": "rwm", "none": ""}.get(node.permissions, node.permissions)
                rules = linux.setdefault("resources", {}).setdefault("devices", [])
                rules.append({"allow": True, "type": device["type"], "major": device["major"],
                              "minor": device["minor"], "access": access})  # fmt: skip
        for mount in edits.mounts:
            _check_path(f"{source}: mount containerPath", mount.container_path)
            oci_mount: dict[str, Any] = {"destination": mount.container_path, "source": mount.host_path,
                                         "options": list(mount.options)}  # fmt: skip
            if mount.type:
                oci_mount["type"] = mount.type
            mounts = [m for m in spec.get("mounts", []) if m["destination"] != mount.container_path]
            spec["mounts"] = [*mounts, oci_mount]
        if edits.mounts:
            spec["mounts"] = sorted(spec["mounts"], key=_path_depth)
        for hook in edits.hooks:
            _check_path(f"{source}: hook path", hook.path)
            hook_entry = oci_hook(hook.path, hook.args, hook.env, hook.timeout)
            spec.setdefault("hooks", {}).setdefault(hook.hook_name, []).append(hook_entry)
        if edits.intel_rdt:
            linux["intelRdt"] = dict(edits.intel_rdt)
        gids = user.setdefault("additionalGids", [])
        for gid in edits.additional_gids:
            if gid and gid not in gids:
                gids.append(gid)

"""Random CRI requests for the fuzz suites, built from the protobuf descriptors (so every field of every RPC
is covered, also fields added to the API later), as containerd's CRI fuzzer does.

Strings are drawn mostly from values that get a request deep into the runtime (ids of objects made earlier
in the same run, Kubernetes-like names, the test image, absolute paths), and otherwise hostile: NUL bytes,
any unicode, separators (`;`, `=`, `_`, `/`), `..`, kernel paths and, rarely, megabyte strings. Numbers are
drawn around the boundaries of their type.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from adapters.cri.generated import api_pb2 as pb

Draw = Callable[[st.SearchStrategy[Any]], Any]

# Every RPC but GetContainerEvents, whose stream lasts until the client goes (tested on its own elsewhere).
SERVICES = {name: pb.DESCRIPTOR.services_by_name[name] for name in ("RuntimeService", "ImageService")}
# The RPCs that make things come up more often, so that sequences have pods and containers to act on.
_WEIGHTS = {"RunPodSandbox": 6, "CreateContainer": 10, "StartContainer": 4}
METHODS = [
    (service_name, method)
    for service_name, service in SERVICES.items()
    for method in service.methods
    if method.name != "GetContainerEvents"
    for _ in range(_WEIGHTS.get(method.name, 1))
]

_NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
_PATHS = st.sampled_from(
    ["/", "/tmp", "/data", "/proc", "/proc/sys/kernel", "/sys/fs/cgroup", "/dev/null", "/etc/passwd",
     "/var/log/pods/x", "relative/path", "../../etc", "/a/../b", "//", "/tmp/\0x"]
)  # fmt: skip
_HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["x;IP=10.85.7.77", "a=b", "a_b", "a/b", "..", "\0", "²", "١٢", "a\nb", "-", ".", ""]),
    st.builds(lambda n, c: c * n, st.sampled_from([255, 4097, 1 << 16]), st.sampled_from(["a", "é", "9"])),
)
# A NUL inside an otherwise plausible value: what C code and the kernel read differently from Python.
_NUL = st.builds(lambda a, b: f"{a}\0{b}", _NAMES, st.one_of(_NAMES, st.just("/etc/passwd")))
_HUGE = st.builds(lambda c: c * (1 << 20), st.sampled_from(["a", "\0"]))
_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


@dataclass
class Known:
    """Ids and names made earlier in one run, so that later calls can act on them."""

    pods: list[str] = field(default_factory=list)
    containers: list[str] = field(default_factory=list)
    images: list[str] = field(default_factory=lambda: ["busybox:latest"])
    log_directory: str = ""  # a real directory for the pods' logs (the fake monitor writes there)


def request_for(
    draw: Draw, descriptor: Any, known: Known, allow_huge: bool = True, force_plausible: bool = False
) -> Message:
    """A random request; for the RPCs that make things, half the time a plausible one with one part
    randomised, so that sequences get pods and containers to act on."""
    message_class = getattr(pb, descriptor.name)
    message: Message = message_class()
    plausible = _PLAUSIBLE.get(descriptor.name)
    kinds = ["mutated", "plausible"] if force_plausible else ["mutated", "plausible", "random"]
    how = draw(st.sampled_from(kinds))
    if how == "random":
        _fill(draw, message, known, depth=0, allow_huge=allow_huge)
        return message
    if plausible is not None:
        parts = plausible(draw, message, known)
        if parts and draw(st.booleans()):
            part = draw(st.sampled_from(parts))()
            part.SetInParent()
            _fill(draw, part, known, depth=1, allow_huge=allow_huge)
    else:
        _known_ids(draw, message, known)
    if how == "mutated":
        for _ in range(draw(st.integers(1, 3))):
            _mutate(draw, message, known)
    return message


def _known_ids(draw: Draw, message: Message, known: Known) -> None:
    """The request's top-level ids set to objects that exist, so that a mutation elsewhere gets far."""
    ids = [*known.pods, *known.containers]
    for descriptor in message.DESCRIPTOR.fields:
        is_id = descriptor.type == FieldDescriptor.TYPE_STRING and descriptor.name.endswith("_id")
        if is_id and not descriptor.is_repeated and ids:
            setattr(message, descriptor.name, draw(st.sampled_from(ids)))


def _mutate(draw: Draw, message: Message, known: Known, depth: int = 0) -> None:
    """One hostile value in one leaf field anywhere in the message (the nested messages made on the way):
    every leaf of the request's schema is equally likely, however deep it sits."""
    path = draw(st.sampled_from(_leaves(message.DESCRIPTOR)))
    if not path:
        return
    target = message
    for descriptor in path[:-1]:
        container = getattr(target, descriptor.name)
        target = container.add() if descriptor.is_repeated else container
        target.SetInParent()
    leaf = path[-1]
    if leaf.type == FieldDescriptor.TYPE_MESSAGE:  # a map
        value_field = leaf.message_type.fields_by_name["value"]
        value = (draw(st.one_of(_HOSTILE, _PATHS)) if value_field.type == FieldDescriptor.TYPE_STRING
                 else _scalar(draw, value_field, known, allow_huge=False))  # fmt: skip
        getattr(target, leaf.name)[draw(st.one_of(_HOSTILE, _NAMES))] = value
        return
    value = draw(st.one_of(_HOSTILE, _PATHS, _NUL)) if leaf.type == FieldDescriptor.TYPE_STRING else (
        _scalar(draw, leaf, known, allow_huge=False))  # fmt: skip
    if leaf.is_repeated:
        getattr(target, leaf.name).append(value)
    else:
        setattr(target, leaf.name, value)


_LEAVES: dict[str, list[tuple[Any, ...]]] = {}


def _leaves(descriptor: Any, depth: int = 0) -> list[tuple[Any, ...]]:
    """Paths from a message to each scalar (or map of scalars) field below it, up to 6 levels."""
    if depth == 0 and descriptor.full_name in _LEAVES:
        return _LEAVES[descriptor.full_name]
    paths: list[tuple[Any, ...]] = []
    for field_descriptor in descriptor.fields:
        if field_descriptor.type != FieldDescriptor.TYPE_MESSAGE:
            paths.append((field_descriptor,))
        elif field_descriptor.message_type.GetOptions().map_entry:
            value = field_descriptor.message_type.fields_by_name["value"]
            if value.type != FieldDescriptor.TYPE_MESSAGE:
                paths.append((field_descriptor,))
        elif depth < 6:
            paths += [(field_descriptor, *rest) for rest in _leaves(field_descriptor.message_type, depth + 1)]
    if depth == 0:
        _LEAVES[descriptor.full_name] = paths = paths or [()]
    return paths


def _plausible_pod(draw: Draw, request: Any, known: Known) -> list[Callable[[], Message]]:
    config = request.config
    config.metadata.name, config.metadata.uid, config.metadata.namespace = (draw(_NAMES) for _ in range(3))
    config.log_directory = known.log_directory
    if draw(st.booleans()):
        config.linux.security_context.namespace_options.network = pb.NODE
    return [lambda: config.linux.security_context, lambda: config.linux, lambda: config.dns_config,
            config.port_mappings.add]  # fmt: skip


def _plausible_container(draw: Draw, request: Any, known: Known) -> list[Callable[[], Message]]:
    if known.pods:
        request.pod_sandbox_id = draw(st.sampled_from(known.pods))
    config = request.config
    config.metadata.name = draw(_NAMES)
    config.image.image = draw(st.sampled_from(known.images))
    config.command.extend(draw(st.sampled_from([["sleep", "1000"], ["echo", "hi"], ["sh", "-c", "exit 3"]])))
    config.log_path = draw(_NAMES) + ".log"
    return [lambda: config.linux.resources, lambda: config.linux.security_context, config.mounts.add,
            config.envs.add, config.devices.add,
            lambda: config.linux.security_context.namespace_options]  # fmt: skip


_PLAUSIBLE: dict[str, Callable[[Draw, Any, Known], list[Callable[[], Message]]]] = {
    "RunPodSandboxRequest": _plausible_pod,
    "CreateContainerRequest": _plausible_container,
}


def _fill(draw: Draw, message: Message, known: Known, depth: int, allow_huge: bool) -> None:
    fields: list[Any] = list(message.DESCRIPTOR.fields)
    for descriptor in fields:
        # Set about half the fields; deeper messages fewer, so requests stay small.
        if not draw(st.booleans()) or (depth > 2 and draw(st.booleans())):
            continue
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE and descriptor.message_type.GetOptions().map_entry:
            target = getattr(message, descriptor.name)
            key_field = descriptor.message_type.fields_by_name["key"]
            value_field = descriptor.message_type.fields_by_name["value"]
            for _ in range(draw(st.integers(0, 3))):
                key = _scalar(draw, key_field, known, allow_huge=False)
                if value_field.type == FieldDescriptor.TYPE_MESSAGE:
                    _fill(draw, target[key], known, depth + 1, allow_huge)
                else:
                    target[key] = _scalar(draw, value_field, known, allow_huge)
        elif descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if depth > 4:
                continue
            if descriptor.is_repeated:
                container = getattr(message, descriptor.name)
                for _ in range(draw(st.integers(0, 3))):
                    _fill(draw, container.add(), known, depth + 1, allow_huge)
            else:
                child = getattr(message, descriptor.name)
                child.SetInParent()
                _fill(draw, child, known, depth + 1, allow_huge)
        elif descriptor.is_repeated:
            values = [_scalar(draw, descriptor, known, allow_huge) for _ in range(draw(st.integers(0, 3)))]
            getattr(message, descriptor.name).extend(values)
        else:
            setattr(message, descriptor.name, _scalar(draw, descriptor, known, allow_huge))


def _scalar(draw: Draw, descriptor: Any, known: Known, allow_huge: bool) -> Any:
    kind = descriptor.type
    if kind == FieldDescriptor.TYPE_STRING:
        return _string(draw, descriptor.name, known, allow_huge)
    if kind == FieldDescriptor.TYPE_BYTES:
        return draw(st.binary(max_size=64))
    if kind == FieldDescriptor.TYPE_BOOL:
        return draw(st.booleans())
    if kind == FieldDescriptor.TYPE_ENUM:
        numbers = [v.number for v in descriptor.enum_type.values]
        return draw(st.sampled_from([*numbers, max(numbers) + 1, -1]))
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return draw(st.floats(allow_nan=False, width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64))
    low, high = _INT_RANGES[kind]
    edges = [
        v for v in (0, 1, -1, 2, 10, 1000, 100_000, 2**31 - 1, 2**32, 2**62, -(2**62)) if low <= v <= high
    ]
    return draw(st.one_of(st.sampled_from([*edges, low, high]), st.integers(low, high)))


def _string(draw: Draw, name: str, known: Known, allow_huge: bool) -> str:
    choices: list[st.SearchStrategy[str]] = [_NAMES, _HOSTILE]
    if name.endswith("_id") or name in ("id", "target_id"):
        ids = [*known.pods, *known.containers]
        if ids:
            choices += [st.sampled_from(ids)] * 4
            choices.append(st.sampled_from([i[:3] for i in ids]))  # prefixes, maybe ambiguous
    if name in ("image", "user_specified_image"):
        choices += [st.sampled_from(known.images)] * 4
    if "path" in name or "dir" in name or name in ("working_dir", "localhost_ref", "cgroup_parent"):
        choices += [_PATHS] * 2
    if allow_huge and draw(st.integers(0, 50)) == 0:
        choices = [_HUGE]
    return str(draw(st.one_of(choices)))

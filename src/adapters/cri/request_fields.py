"""One check of every string, bytes and enum field in every CRI request, before any handler sees it.

A NUL byte cannot be part of a path, a name, a cgroup, an argument or an environment variable: the kernel
and every C program stop reading there, so a NUL would make the host act on another value than the one that
was checked (or fail deep inside with an internal error). Rather than test each field that reaches the host,
every string field of the request is refused here, naming the field.

Protobuf enums are open: a newer kubelet (or a hostile client) can send a number this API does not define,
and the message still parses. A handler that maps enums with a default would then act on another value than
the one asked for (a pod with `network: 99` run in a pod network namespace). Every enum field holding an
undefined number is refused here, naming the field, whether or not a handler reads it.
"""

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from domain.errors import InvalidArgument

_MAX_DEPTH = 32  # CRI messages nest a handful of levels; protobuf itself stops at 100
# Bytes fields too: an environment value is bytes since cri-api 1.36.2, and becomes a C string all the same.
_NUL = {FieldDescriptor.TYPE_STRING: "\0", FieldDescriptor.TYPE_BYTES: b"\0"}
_TEXT_TYPES = frozenset(_NUL)


def check_request_fields(message: Message) -> None:
    """InvalidArgument naming the first string field (or map key) that holds a NUL byte, or the first enum
    field that holds a number its enum does not define."""
    _check(message, "", 0)


def _check(message: Message, prefix: str, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidArgument(f"{prefix or 'request'}: nested too deeply")
    # Every request passes here: a field's name is spelled out only where it is needed (nested fields' prefix,
    # or the error), not for each string that is fine.
    for field, value in message.ListFields():
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            name = f"{prefix}{field.name}"
            entry = field.message_type
            if entry is not None and entry.GetOptions().map_entry:
                _check_map(entry, value, name, depth)
            elif field.is_repeated:
                for index, item in enumerate(value):
                    _check(item, f"{name}[{index}].", depth + 1)
            else:
                _check(value, f"{name}.", depth + 1)
        elif field.type in _TEXT_TYPES:
            nul = _NUL[field.type]
            if field.is_repeated:
                for index, item in enumerate(value):
                    if nul in item:
                        _refuse_nul(f"{prefix}{field.name}[{index}]", item)
            elif nul in value:
                _refuse_nul(f"{prefix}{field.name}", value)
        elif field.type == FieldDescriptor.TYPE_ENUM and field.enum_type is not None:
            defined = field.enum_type.values_by_number
            for index, number in enumerate(value if field.is_repeated else (value,)):
                if number not in defined:
                    where = f"{prefix}{field.name}" + (f"[{index}]" if field.is_repeated else "")
                    raise InvalidArgument(f"{where}: {number} is not a defined {field.enum_type.name}")


def _check_map(entry: Descriptor, value: object, name: str, depth: int) -> None:
    value_field = entry.fields_by_name["value"]
    for key, item in value.items():  # type: ignore[attr-defined]
        if isinstance(key, str):
            _refuse_nul(f"{name} key", key)
        if value_field.type == FieldDescriptor.TYPE_STRING:
            _refuse_nul(f"{name}[{key!r}]", item)
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            _check(item, f"{name}[{key!r}].", depth + 1)


def _refuse_nul(name: str, value: str | bytes) -> None:
    if ("\0" in value) if isinstance(value, str) else (b"\0" in value):
        raise InvalidArgument(f"{name}: must not contain a NUL byte")

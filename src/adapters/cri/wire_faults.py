"""Where a request that protobuf refused to parse goes wrong, named as a field path.

protobuf's parser says only "Error parsing message". A client is better served by the field: a string that
is not UTF-8 (`config.envs[2].key`), a length that runs past the end, a wire type that does not exist. This
walks the protobuf wire format against the request's descriptor until it finds the first such fault. It
runs only after the parser has refused the bytes, reads at most MAX_FIELDS fields and MAX_DEPTH levels
(the parser's own nesting limit), and allocates nothing per field beyond the names it reports.
"""

from google.protobuf.descriptor import Descriptor, FieldDescriptor

MAX_FIELDS = 100_000
MAX_DEPTH = 100

_VARINT, _FIXED64, _LENGTH, _GROUP_START, _GROUP_END, _FIXED32 = range(6)
_MAX_VARINT_BYTES = 10


class _Fault(Exception):
    pass


class _Enough(Exception):
    """MAX_FIELDS read without a fault: the bytes are too many to explain."""


def first_fault(descriptor: Descriptor, data: bytes) -> str:
    """The first fault in `data` read as a `descriptor` message ("config.envs[0].value: not valid UTF-8"),
    or "" if none was found within the limits."""
    walker = _Walker()
    try:
        walker.message(descriptor, memoryview(data), "", 0)
    except _Fault as fault:
        return str(fault)
    except _Enough:
        return ""
    return ""


class _Walker:
    def __init__(self) -> None:
        self.fields = 0

    def message(self, descriptor: Descriptor | None, data: memoryview, prefix: str, depth: int) -> None:
        where = prefix.rstrip(".") or "request"
        if depth > MAX_DEPTH:
            raise _Fault(f"{where}: nested more than {MAX_DEPTH} levels deep")
        seen: dict[int, int] = {}
        position = 0
        while position < len(data):
            number, wire, position = self._tag(data, position, where)
            if wire == _GROUP_END:
                raise _Fault(f"{where}: a group ends that never started (field {number})")
            field = descriptor.fields_by_number.get(number) if descriptor is not None else None
            name = prefix + (field.name if field is not None else f"field {number}")
            if field is not None and field.is_repeated:
                index = seen.get(number, 0)
                seen[number] = index + 1
                name = f"{name}[{index}]"
            position = self._value(field, wire, number, data, position, name, depth)

    def _value(
        self,
        field: FieldDescriptor | None,
        wire: int,
        number: int,
        data: memoryview,
        position: int,
        name: str,
        depth: int,
    ) -> int:
        if wire == _VARINT:
            return _varint(data, position, name)[1]
        if wire == _FIXED64:
            return _skip(data, position, 8, name)
        if wire == _FIXED32:
            return _skip(data, position, 4, name)
        if wire == _GROUP_START:
            return self._group(data, position, number, name, depth + 1)
        if wire != _LENGTH:
            raise _Fault(f"{name}: wire type {wire} does not exist")
        length, position = _varint(data, position, name)
        end = position + length
        if end > len(data):
            raise _Fault(f"{name}: its length runs past the end of the message")
        payload = data[position:end]
        if field is not None and field.type == FieldDescriptor.TYPE_STRING:
            try:
                str(payload, "utf-8")
            except UnicodeDecodeError as error:
                raise _Fault(f"{name}: not valid UTF-8 (byte {error.start})") from None
        elif field is not None and field.type == FieldDescriptor.TYPE_MESSAGE:
            self.message(field.message_type, payload, f"{name}.", depth + 1)
        return end

    def _group(self, data: memoryview, position: int, number: int, name: str, depth: int) -> int:
        """A field of the old group kind (unknown to proto3): skipped to its end; a fault inside it is named
        as the group's."""
        if depth > MAX_DEPTH:
            raise _Fault(f"{name}: nested more than {MAX_DEPTH} levels deep")
        while position < len(data):
            inner, wire, position = self._tag(data, position, name)
            if wire == _GROUP_END:
                if inner != number:
                    raise _Fault(f"{name}: the group ends as field {inner}")
                return position
            position = self._value(None, wire, inner, data, position, name, depth)
        raise _Fault(f"{name}: the group never ends")

    def _tag(self, data: memoryview, position: int, where: str) -> tuple[int, int, int]:
        self.fields += 1
        if self.fields > MAX_FIELDS:
            raise _Enough
        key, position = _varint(data, position, where)
        number, wire = key >> 3, key & 7
        if number == 0 or number >= 1 << 29:
            raise _Fault(f"{where}: field number {number} is not valid")
        return number, wire, position


def _varint(data: memoryview, position: int, name: str) -> tuple[int, int]:
    value = 0
    for index in range(_MAX_VARINT_BYTES):
        if position + index >= len(data):
            raise _Fault(f"{name}: the message ends inside a number")
        byte = data[position + index]
        value |= (byte & 0x7F) << (7 * index)
        if not byte & 0x80:
            return value, position + index + 1
    raise _Fault(f"{name}: a number longer than {_MAX_VARINT_BYTES} bytes")


def _skip(data: memoryview, position: int, size: int, name: str) -> int:
    if position + size > len(data):
        raise _Fault(f"{name}: the message ends inside a fixed-size number")
    return position + size

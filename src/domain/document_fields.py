"""Typed fields of decoded JSON/YAML documents (CDI specs, OCI hook files), checked strictly: a wrong type or
an unknown field is InvalidArgument naming the field, as the Go readers with strict decoding answer."""

from typing import Any

from domain.errors import InvalidArgument


def fields(
    value: Any, where: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """An object with only the `allowed` fields and every `required` one."""
    if not isinstance(value, dict):
        raise InvalidArgument(f"{where}: expected an object")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise InvalidArgument(f"{where}: unknown field {unknown[0]!r}")
    missing = sorted(required - set(value))
    if missing:
        raise InvalidArgument(f"{where}: missing required field {missing[0]!r}")
    return value


def string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where}: expected a string")
    return value


def strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"{where}: expected a list of strings")
    return tuple(value)


def integer(value: Any, where: str, low: int, high: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{where}: expected an integer in {low}..{high}")
    return value


def boolean(value: Any, where: str) -> bool | None:
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{where}: expected true or false")
    return value


def string_map(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"{where}: expected an object of strings")
    return value

"""An in-memory systemd unit manager: transient slices and scopes, their properties, and the rules the
driver relies on (a scope needs pids, stopping a slice stops what is in it, a stopped unit is gone)."""

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from domain.errors import InvalidArgument, NotFound
from ports.systemd_units import PropertyValue


@dataclass
class FakeUnit:
    name: str
    slice: str
    pids: list[int] = field(default_factory=list)
    properties: dict[str, PropertyValue] = field(default_factory=dict)


def _parent_slice(name: str) -> str:
    stem = name.removesuffix(".slice")
    return stem.rsplit("-", 1)[0] + ".slice" if "-" in stem else "-.slice"


class FakeSystemdUnits:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.units: dict[str, FakeUnit] = {}

    def start_slice(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        _check(name, ".slice")
        with self._lock:
            self._start_slice_locked(name, properties)

    def _start_slice_locked(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        if name in self.units or name == "-.slice":
            return
        parent = _parent_slice(name)
        self._start_slice_locked(parent, {})
        self.units[name] = FakeUnit(name, parent, properties=dict(properties))

    def start_scope(
        self, name: str, slice_name: str, pids: Sequence[int], properties: Mapping[str, PropertyValue]
    ) -> None:
        _check(name, ".scope")
        _check(slice_name, ".slice")
        if not pids or any(pid <= 0 for pid in pids):
            raise InvalidArgument(f"scope {name} needs the pids it holds, not {list(pids)}")
        with self._lock:
            existing = self.units.get(name)
            if existing is not None:
                existing.pids.extend(pids)
                return
            self._start_slice_locked(slice_name, {})
            wanted = {"Delegate": True, **properties}
            self.units[name] = FakeUnit(name, slice_name, list(pids), wanted)

    def set_properties(self, name: str, properties: Mapping[str, PropertyValue]) -> None:
        with self._lock:
            self._unit(name).properties.update(properties)

    def get_property(self, name: str, prop: str) -> PropertyValue:
        with self._lock:
            unit = self._unit(name)
            if prop == "ActiveState":
                return "active"
            if prop == "Slice":
                return unit.slice
            if prop not in unit.properties:
                raise NotFound(f"{name} has no property {prop} set")
            return unit.properties[prop]

    def active(self, name: str) -> bool:
        with self._lock:
            return name in self.units

    def stop(self, name: str) -> None:
        with self._lock:
            self._stop_locked(name)

    def _stop_locked(self, name: str) -> None:
        for child in [u.name for u in self.units.values() if u.slice == name]:
            self._stop_locked(child)
        self.units.pop(name, None)

    def _unit(self, name: str) -> FakeUnit:
        unit = self.units.get(name)
        if unit is None:
            raise NotFound(f"systemd unit {name} is not loaded")
        return unit


def _check(name: str, suffix: str) -> None:
    if not name.endswith(suffix) or name == suffix or "/" in name:
        raise InvalidArgument(f"{name!r} is not a systemd {suffix[1:]} name")

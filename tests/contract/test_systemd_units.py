"""The SystemdUnits port against the fake and, where PID 1 is systemd (the `make vm-test` guest), systemd's
D-Bus API, over its private socket (the daemon's first choice) and over the system bus: slices and scopes
start, hold their processes and properties, and stop."""

import secrets
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adapters.systemd.dbus_units import PRIVATE_SOCKET, DbusSystemdUnits
from domain.errors import FailedPrecondition, InvalidArgument, NotFound
from ports.systemd_units import SystemdUnits
from tests.fakes.systemd_units import FakeSystemdUnits

SYSTEMD = Path("/run/systemd/system").is_dir()
CGROUP2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()


BUSES = {"private-socket": (PRIVATE_SOCKET,), "system-bus": ("SYSTEM",)}


@pytest.fixture(params=["fake", "private-socket", "system-bus"])
def units(request: pytest.FixtureRequest) -> Iterator[SystemdUnits]:
    if request.param == "fake":
        yield FakeSystemdUnits()
        return
    if not SYSTEMD:
        pytest.skip("PID 1 is not systemd here; this case runs in the make vm-test guest")
    real = DbusSystemdUnits(buses=BUSES[request.param])
    yield real
    real.close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(["sleep", "600"])
    yield process
    process.kill()
    process.wait()


def _names() -> tuple[str, str]:
    """A slice right below the root slice (no dash: no parent slices left behind) and a scope."""
    token = secrets.token_hex(4)
    return f"pycriotest{token}.slice", f"pycrio-test-{token}.scope"


def test_a_slice_starts_with_its_properties_and_stops(units: SystemdUnits) -> None:
    slice_name, _ = _names()
    units.start_slice(slice_name, {"MemoryMax": 256 << 20, "CPUWeight": 50})
    try:
        assert units.active(slice_name)
        assert units.get_property(slice_name, "MemoryMax") == 256 << 20
        assert units.get_property(slice_name, "CPUWeight") == 50
        units.start_slice(slice_name, {})  # already active: kept
        assert units.get_property(slice_name, "MemoryMax") == 256 << 20
    finally:
        units.stop(slice_name)
    assert not units.active(slice_name)
    units.stop(slice_name)  # not loaded: not an error


def test_a_scope_adopts_a_process_and_takes_new_properties(
    units: SystemdUnits, sleeper: subprocess.Popen[bytes]
) -> None:
    slice_name, scope = _names()
    units.start_scope(scope, slice_name, [sleeper.pid], {"TasksMax": 64})
    try:
        assert units.active(scope)
        assert units.active(slice_name)
        assert units.get_property(scope, "Delegate") is True
        assert units.get_property(scope, "TasksMax") == 64
        units.set_properties(scope, {"TasksMax": 32, "AllowedCPUs": (0,)})
        assert units.get_property(scope, "TasksMax") == 32
        assert units.get_property(scope, "AllowedCPUs") == (0,)
        if isinstance(units, DbusSystemdUnits):
            cgroup = Path(f"/proc/{sleeper.pid}/cgroup").read_text()
            assert cgroup.strip().endswith(f"/{slice_name}/{scope}"), cgroup
            if CGROUP2:
                assert (Path("/sys/fs/cgroup") / slice_name / scope / "pids.max").read_text() == "32\n"
    finally:
        units.stop(slice_name)
    assert not units.active(scope)


def test_stopping_a_scope_kills_what_it_holds(units: SystemdUnits, sleeper: subprocess.Popen[bytes]) -> None:
    slice_name, scope = _names()
    units.start_scope(scope, slice_name, [sleeper.pid], {})
    units.stop(scope)
    assert not units.active(scope)
    if isinstance(units, DbusSystemdUnits):
        assert sleeper.wait(timeout=30) != 0  # killed by systemd, not by the fixture
    units.stop(slice_name)


def test_jobs_from_many_threads_at_once_all_end(units: SystemdUnits) -> None:
    """The kubelet's pod workers call in parallel, and on systemd's private socket every unit change comes
    as a signal: a filter added per call once crashed jeepney's receiver thread under that load, closing
    the connection under the calls in flight (RemovePodSandbox failed with KeyError)."""
    names = [_names()[0] for _ in range(12)]

    def cycle(name: str) -> None:
        for _ in range(3):
            units.start_slice(name, {"CPUWeight": 50})
            units.stop(name)

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(cycle, names))
    assert not any(units.active(name) for name in names)


def test_bad_names_and_missing_units_are_refused(units: SystemdUnits) -> None:
    with pytest.raises(InvalidArgument):
        units.start_slice("no-suffix", {})
    with pytest.raises(InvalidArgument):
        units.start_scope("x.scope", "a/b.slice", [1], {})
    with pytest.raises(InvalidArgument):
        units.start_scope("pycrio-test-empty.scope", "pycrio-test.slice", [], {})
    with pytest.raises(NotFound):
        units.set_properties(f"pycrio-test-{secrets.token_hex(4)}.slice", {"CPUWeight": 10})


def test_an_unreachable_socket_gives_way_to_the_next_bus(tmp_path: Path) -> None:
    """The daemon tries systemd's private socket, then the system bus: a missing one is passed over, and
    when none answers the error names each, as a configuration problem."""
    nowhere = str(tmp_path / "no-such-socket")
    units = DbusSystemdUnits(buses=(nowhere, str(tmp_path / "neither")))
    with pytest.raises(FailedPrecondition) as raised:
        units.active("pycriotest.slice")
    assert nowhere in str(raised.value) and "neither" in str(raised.value)
    if SYSTEMD:
        units = DbusSystemdUnits(buses=(nowhere, PRIVATE_SOCKET))
        try:
            assert units.active("-.slice")
        finally:
            units.close()

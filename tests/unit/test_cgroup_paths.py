"""Cgroup names for both drivers map to the directories runc creates."""

import pytest

from adapters.cgroups.paths import expand_slice, hierarchy_path
from domain.errors import InvalidArgument


@pytest.mark.parametrize(
    ("name", "driver", "path"),
    [
        ("/kubepods/burstable/pod1/abc", "cgroupfs", "/kubepods/burstable/pod1/abc"),
        ("kubepods/pod1/", "cgroupfs", "/kubepods/pod1"),
        (
            "kubepods-burstable-pod1.slice",
            "systemd",
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice",
        ),
        (
            "kubepods-besteffort-pod1.slice:pycrio:abc",
            "systemd",
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/pycrio-abc.scope",
        ),
        (":pycrio:abc", "systemd", "/system.slice/pycrio-abc.scope"),
        ("machine.slice::abc", "systemd", "/machine.slice/abc.scope"),
        ("-.slice:pycrio:abc", "systemd", "/pycrio-abc.scope"),
        ("/already/absolute", "systemd", "/already/absolute"),
        ("/a.slice/a-b.slice:pycrio:abc", "systemd", "/a.slice/a-b.slice/pycrio-abc.scope"),
    ],
)
def test_paths(name: str, driver: str, path: str) -> None:
    assert hierarchy_path(name, driver) == path  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["kubepods--x.slice", "-kubepods.slice", "kubepods.scope", "a/b.slice"])
def test_bad_slices(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        expand_slice(bad)


def test_bad_systemd_triples() -> None:
    with pytest.raises(InvalidArgument):
        hierarchy_path("a.slice:b", "systemd")
    with pytest.raises(InvalidArgument):
        hierarchy_path("a.slice:b:", "systemd")

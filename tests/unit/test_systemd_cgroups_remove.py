"""SystemdCgroups.remove of a shared parent slice that another pod's removal takes away at the same moment:
the kernel has dropped the directory's files while it is still listed (pods removed in parallel in the
vm-test guest answered INTERNAL with FileNotFoundError on its cgroup.procs)."""

from pathlib import Path

import pytest

from adapters.cgroups.systemd import SystemdCgroups
from domain.errors import Internal
from tests.fakes.systemd_units import FakeSystemdUnits

PARENT = "/kubepods.slice/kubepods-burstable.slice"


def _tree(tmp_path: Path) -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids\n")
    (tmp_path / PARENT.lstrip("/")).mkdir(parents=True)
    return tmp_path


def test_a_parent_whose_files_went_meanwhile_is_stopped(tmp_path: Path) -> None:
    units = FakeSystemdUnits()
    units.start_slice("kubepods-burstable.slice", {})
    cgroups = SystemdCgroups(units, root=_tree(tmp_path))  # no cgroup.procs: removed under our feet
    cgroups.remove(PARENT)
    assert not units.active("kubepods-burstable.slice")


def test_a_parent_still_in_use_is_kept(tmp_path: Path) -> None:
    units = FakeSystemdUnits()
    units.start_slice("kubepods-burstable.slice", {})
    root = _tree(tmp_path)
    (root / PARENT.lstrip("/") / "cgroup.procs").write_text("")
    (root / PARENT.lstrip("/") / "kubepods-burstable-podx.slice").mkdir()
    with pytest.raises(Internal):
        SystemdCgroups(units, root=root).remove(PARENT)
    assert units.active("kubepods-burstable.slice")

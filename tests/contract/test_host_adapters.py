"""Contracts of the small host ports the containers service uses: Bundles, HostFiles and Clock, each over its
fake and the real adapter (a private directory stands in for /dev; device nodes need root)."""

import json
import os
import stat
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from adapters.host.bundles import DirectoryBundles
from adapters.host.files import RealHostFiles
from adapters.system.clock import SystemClock
from domain.errors import InvalidArgument, ResourceExhausted
from domain.oci_spec import HostDevice
from ports.bundles import Bundles
from ports.clock import Clock
from ports.host_files import HostFiles
from tests.fakes.bundles import InMemoryBundles
from tests.fakes.clock import FakeClock
from tests.fakes.host_files import FakeHostFiles

# -- Bundles ---------------------------------------------------------------------------------------------


@dataclass
class BundleWorld:
    bundles: Bundles
    read: Callable[[Path], dict[str, Any]]


@pytest.fixture(params=["fake", "directories"])
def bundle_world(request: pytest.FixtureRequest, tmp_path: Path) -> BundleWorld:
    if request.param == "fake":
        fake = InMemoryBundles()
        return BundleWorld(fake, fake.read)
    return BundleWorld(
        DirectoryBundles(tmp_path / "bundles"), lambda path: json.loads((path / "config.json").read_text())
    )


def test_a_bundle_holds_the_spec_written_last_until_removed(bundle_world: BundleWorld) -> None:
    bundles = bundle_world.bundles
    path = bundles.write("c1", {"ociVersion": "1.0.2", "process": {"args": ["a"]}})
    assert path == bundles.path("c1") != bundles.path("c2")
    assert bundles.write("c1", {"ociVersion": "1.0.2", "process": {"args": ["b"]}}) == path
    assert bundle_world.read(path)["process"]["args"] == ["b"]
    bundles.remove("c1")
    bundles.remove("c1")
    with pytest.raises((KeyError, FileNotFoundError)):
        bundle_world.read(path)


@pytest.mark.parametrize("bad", ["../escape", "a/b", ""])
def test_a_bundle_is_named_by_a_plain_container_id(bundle_world: BundleWorld, bad: str) -> None:
    with pytest.raises(InvalidArgument):
        bundle_world.bundles.write(bad, {})


def test_a_bundle_on_a_full_run_dir_is_resource_exhausted_and_removable(tmp_path: Path) -> None:
    """The run dir is a tmpfs on real nodes, and it fills up: the write names the container and the dir."""
    disk = tmp_path / "run"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "pctest-bundles", str(disk)], check=True)
    try:
        bundles = DirectoryBundles(disk)
        with pytest.raises(ResourceExhausted, match=r"no space left for the bundle of container c1 in "):
            bundles.write("c1", {"env": ["X=" + "x" * (1 << 20)]})
        bundles.remove("c1")  # what the create's rollback does
        assert list(disk.iterdir()) == []
        bundles.write("c1", {"env": ["X=1"]})  # space is back
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# -- HostFiles -------------------------------------------------------------------------------------------


@dataclass
class FilesWorld:
    files: HostFiles
    root: Path  # where the world's paths live
    null: HostDevice  # a character device the world has at root/dev/null


@pytest.fixture(params=["fake", pytest.param("host", marks=pytest.mark.root)])
def files_world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FilesWorld]:
    null = HostDevice(str(tmp_path / "dev" / "null"), "c", 1, 3, 0o666, 0, 0)
    profile, link = tmp_path / "profile.json", tmp_path / "link"
    if request.param == "fake":
        yield FilesWorld(
            FakeHostFiles(
                paths={str(profile): str(profile), str(link): str(profile), null.path: null.path},
                devices={null.path: null},
                files={str(profile): "{}"},
            ),
            tmp_path,
            null,
        )
        return
    (tmp_path / "dev").mkdir()
    os.mknod(null.path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.chmod(null.path, 0o666)
    profile.write_text("{}")
    link.symlink_to(profile)
    yield FilesWorld(RealHostFiles(dev_root=tmp_path / "dev"), tmp_path, null)


def test_paths_resolve_through_links_and_absent_ones_do_not(files_world: FilesWorld) -> None:
    root, files = files_world.root, files_world.files
    assert files.resolve(str(root / "link")) == str(root / "profile.json")
    assert files.resolve(str(root / "absent")) is None


def test_devices_and_small_files(files_world: FilesWorld) -> None:
    root, files = files_world.root, files_world.files
    assert files.device(files_world.null.path) == files_world.null
    assert files.device(str(root / "profile.json")) is None
    assert files.all_devices() == (files_world.null,)
    assert files.read_text(str(root / "profile.json")) == "{}"
    assert files.read_text(str(root / "absent")) is None


# -- Clock -----------------------------------------------------------------------------------------------


@pytest.fixture(params=["fake", "system"])
def clock(request: pytest.FixtureRequest) -> Clock:
    return FakeClock() if request.param == "fake" else SystemClock()


def test_time_never_goes_back_and_wall_time_is_nanoseconds_since_the_epoch(clock: Clock) -> None:
    first_ns, first = clock.now_ns(), clock.monotonic()
    assert first_ns > 1_600_000_000 * 10**9  # after 2020, in nanoseconds
    assert clock.now_ns() >= first_ns and clock.monotonic() >= first

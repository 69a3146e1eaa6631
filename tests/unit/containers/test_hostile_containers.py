"""Hostile CreateContainer requests against the container service with fakes: each is refused with
InvalidArgument naming the field (never an internal error) and leaves nothing behind."""

import dataclasses
import re

import pytest

from domain.container_config import (
    ImageConfig,
    Mount,
    NamespaceMode,
    NamespaceOptions,
    Resources,
    SecurityContext,
)
from domain.errors import DeadlineExceeded, InvalidArgument
from tests.fakes.container_rootfs import FakeImage
from tests.unit.containers.test_container_service import World, assert_nothing_left, config, world

__all__ = ["world"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mounts": (Mount("/", "/data"),)}, r"mounts\[0\].container_path: '/' would cover"),
        ({"mounts": (Mount("//./", "/data"),)}, r"mounts\[0\].container_path"),
        ({"mounts": (Mount("/proc", "/data"),)}, r"mounts\[0\].container_path: '/proc' is in /proc"),
        ({"mounts": (Mount("/in", "/data"), Mount("/proc/sys", "/data"))}, r"mounts\[1\]"),
        ({"resources": Resources(cpuset_cpus="0-99999")}, "cpuset_cpus"),
        ({"resources": Resources(cpuset_cpus="3-1")}, "cpuset_cpus"),
        ({"resources": Resources(cpuset_mems="0-5000")}, "cpuset_mems"),
        ({"resources": Resources(cpu_quota=2**62)}, "cpu_quota"),
        ({"name": "x" * (1 << 20)}, "metadata.name: 1048576 characters"),
        ({"name": "a;b=c"}, "metadata.name"),
        ({"log_path": "é" * 200 + ".log"}, "log_path: a name longer than 255 bytes"),
        ({"working_dir": "/" + "w" * 256}, "working_dir: a name longer than 255 bytes"),
        ({"mounts": (Mount("/" + "m" * 256, "/data"),)}, r"mounts\[0\].container_path: a name longer"),
        ({"security": SecurityContext(run_as_username="²")}, "run_as_username"),
        ({"security": SecurityContext(run_as_username="١٢")}, "run_as_username"),
        ({"security": SecurityContext(run_as_username="1" * 5000)}, "run_as_username"),
    ],
)
def test_refused_up_front_naming_the_field(world: World, fields: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=field):
        world.service.create("sb1", config(**fields))  # type: ignore[arg-type]
    assert_nothing_left(world)


@pytest.mark.parametrize(
    ("passwd", "user"),
    [
        ("big:x:99999999999:0::/:/bin/sh\n", "big"),
        ("neg:x:-5:0::/:/bin/sh\n", "neg"),
        ("root:x:0:0::/:/bin/sh\n", "²"),
    ],
)
def test_an_image_with_bad_ids_or_user_is_refused(world: World, passwd: str, user: str) -> None:
    world.rootfs.add_image(FakeImage("bad1", ("bad:1",), ImageConfig(cmd=("/bin/sh",), user=user),
                                     {"/etc/passwd": passwd}))  # fmt: skip
    with pytest.raises(InvalidArgument, match="image USER"):
        world.service.create("sb1", config(image="bad:1"))
    assert_nothing_left(world)


def test_pid_target_must_be_a_container_of_the_same_pod(world: World) -> None:
    world.sandboxes.add(dataclasses.replace(world.sandbox, id="sb2", name="other", uid="uid2"))
    other = world.service.create("sb2", config(name="victim"))
    world.service.start(other)
    target = SecurityContext(namespace_options=NamespaceOptions(pid=NamespaceMode.TARGET, target_id=other))
    with pytest.raises(InvalidArgument, match="not in this container's pod"):
        world.service.create("sb1", config(name="spy", security=target))
    assert [c.id for c in world.service.list_containers()] == [other]
    mine = world.service.create("sb1", config(name="mine"))
    world.service.start(mine)
    ok = SecurityContext(namespace_options=NamespaceOptions(pid=NamespaceMode.TARGET, target_id=mine))
    world.service.create("sb1", config(name="debugger", security=ok))


def test_a_failed_create_removes_the_mount_points_runc_made_in_host_directories(world: World) -> None:
    world.host_files.paths.update({"/srv": "/srv", "/data/existing": "/data/existing"})
    mounts = (Mount("/in", "/data"), Mount("/in/sub/x", "/srv"), Mount("/in/existing/y", "/srv"))
    world.monitor.create_delay_exceeded = True  # runc (through the monitor) fails after the mounts
    with pytest.raises(DeadlineExceeded):
        world.service.create("sb1", config(mounts=mounts))
    assert world.host_files.removed == ["/data/existing/y", "/data/sub/x", "/data/sub"]
    assert_nothing_left(world)


@pytest.mark.parametrize("checks_passed", [0, 1, 2, 3, 4, 5])
def test_a_caller_giving_up_between_any_two_steps_leaves_nothing(world: World, checks_passed: int) -> None:
    asked: list[bool] = []

    def gone() -> bool:
        asked.append(True)
        return len(asked) > checks_passed

    with pytest.raises(DeadlineExceeded, match="caller gave up"):
        world.service.create("sb1", config(), caller_gone=gone)
    assert_nothing_left(world)
    world.service.create("sb1", config())  # the name is free again


@pytest.mark.parametrize(
    ("working_dir", "symlinks", "shown"),
    [
        ("/proc/self/fd/7", {}, "'/proc/self/fd/7' is in /proc"),
        ("/dev/fd/7", {}, "'/dev/fd/7' is in /dev"),
        ("/work", {"/work": "/proc/self/fd/7"}, "'/work' (resolving to '/proc/self/fd/7') is in /proc"),
        ("/app/x", {"/app": "../../sys/fs"}, "'/app/x' (resolving to '/sys/fs/x') is in /sys"),
        ("/srv/../../proc", {}, "'/srv/../../proc' (resolving to '/proc') is in /proc"),
    ],
    ids=["proc fd", "dev fd", "symlink to proc", "relative symlink climbing to sys", "dot-dot"],
)
def test_an_image_working_dir_in_a_runtime_filesystem_is_refused(
    world: World, working_dir: str, symlinks: dict[str, str], shown: str
) -> None:
    # CVE-2024-21626: runc before 1.1.12 left a process whose cwd was /proc/self/fd/<n> on the host.
    image = ImageConfig(cmd=("/bin/sh",), working_dir=working_dir)
    world.rootfs.add_image(FakeImage("cwd1", ("cwd:1",), image, symlinks=symlinks))
    with pytest.raises(InvalidArgument, match=re.escape(f"WorkingDir): {shown}")):
        world.service.create("sb1", config(image="cwd:1"))
    assert_nothing_left(world)
    with pytest.raises(InvalidArgument, match="is in /proc"):
        world.service.create("sb1", config(working_dir="/proc/1/cwd"))  # the request's field alike
    assert_nothing_left(world)


def test_an_image_working_dir_through_a_harmless_symlink_is_kept(world: World) -> None:
    image = ImageConfig(cmd=("/bin/sh",), working_dir="/work")
    world.rootfs.add_image(FakeImage("cwd2", ("cwd:2",), image, symlinks={"/work": "/srv/app"}))
    created = world.service.create("sb1", config(image="cwd:2"))
    assert world.service.status(created).spec["process"]["cwd"] == "/work"  # runc resolves it in the rootfs


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (ImageConfig(cmd=("/bin/sh",), env=("A=1", "B=x\0y")), r"image config Env\[1\]: holds a NUL byte"),
        (ImageConfig(cmd=("/bin/sh", "-c\0")), r"image config Cmd\[1\]: holds a NUL byte"),
        (ImageConfig(entrypoint=("/bin/\0sh",)), r"image config Entrypoint\[0\]: holds a NUL byte"),
        (ImageConfig(cmd=("/bin/sh",), working_dir="/a\0b"), "image config WorkingDir: holds a NUL byte"),
        (
            ImageConfig(cmd=("/bin/sh",), env=("BIG=" + "x" * (128 << 10),)),
            r"Env\[0\]: 131077 bytes, more than",
        ),
    ],
    ids=["env NUL", "cmd NUL", "entrypoint NUL", "workdir NUL", "env past MAX_ARG_STRLEN"],
)
def test_image_strings_no_process_can_start_with_are_refused_up_front(
    world: World, image: ImageConfig, why: str
) -> None:
    world.rootfs.add_image(FakeImage("str1", ("strings:1",), image))
    with pytest.raises(InvalidArgument, match=why):
        world.service.create("sb1", config(image="strings:1"))
    assert_nothing_left(world)

"""The Namespaces contract, run against FakeNamespaces and PinnedNamespaces (the pycrio-ns helper)."""

import fcntl
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.namespaces.ns_helper import BUILT_HELPER
from adapters.namespaces.pinned import PinnedNamespaces
from domain.errors import Internal, InvalidArgument
from domain.id_mappings import IdMapping, UserNamespace
from ports.namespaces import NamespaceRequest, Namespaces
from tests.fakes.namespaces import FakeNamespaces
from tests.pod_host import netns_mounts


@pytest.fixture(params=["fake", "pinned"])
def namespaces(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Namespaces]:
    if request.param == "fake":
        yield FakeNamespaces()
        return
    real = PinnedNamespaces(tmp_path / "run", timeout=30)
    yield real
    for pod in (tmp_path / "run" / "pods").glob("*"):
        real.remove(pod.name)
    assert netns_mounts(tmp_path / "run") == []


def _id() -> str:
    return secrets.token_hex(32)


def test_create_pins_three_distinct_namespaces(namespaces: Namespaces) -> None:
    sid = _id()
    made = namespaces.create(sid, NamespaceRequest(hostname="pod-a"))
    paths = [made.network, made.ipc, made.uts]
    assert all(paths) and len(set(paths)) == 3
    assert all(namespaces.exists(p) for p in paths)
    namespaces.remove(sid)
    assert not any(namespaces.exists(p) for p in paths)


def test_two_pods_get_different_namespaces(namespaces: Namespaces) -> None:
    a = namespaces.create(_id(), NamespaceRequest())
    b = namespaces.create(_id(), NamespaceRequest())
    assert a.network != b.network


def test_host_namespaces_are_not_made(namespaces: Namespaces) -> None:
    made = namespaces.create(_id(), NamespaceRequest(network=False, ipc=False, uts=False))
    assert (made.network, made.ipc, made.uts) == ("", "", "")
    only_ipc = namespaces.create(_id(), NamespaceRequest(network=False, uts=False))
    assert only_ipc.ipc and not only_ipc.network


def test_remove_is_idempotent(namespaces: Namespaces) -> None:
    sid = _id()
    namespaces.create(sid, NamespaceRequest())
    namespaces.remove(sid)
    namespaces.remove(sid)
    namespaces.remove(_id())


def test_namespaced_sysctls_are_accepted(namespaces: Namespaces) -> None:
    sysctls = {"net.ipv4.ip_forward": "1", "kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100"}
    made = namespaces.create(_id(), NamespaceRequest(sysctls=sysctls))
    assert namespaces.exists(made.network)


def test_a_sysctl_the_kernel_lacks_is_invalid_and_leaves_nothing(namespaces: Namespaces) -> None:
    sid = _id()
    with pytest.raises(InvalidArgument, match=r"net\.ipv4\.pcpod_no_such"):
        namespaces.create(sid, NamespaceRequest(sysctls={"net.ipv4.pcpod_no_such": "1"}))
    namespaces.remove(sid)


def test_exists_is_false_for_other_paths(namespaces: Namespaces, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.write_text("")
    assert not namespaces.exists(str(plain))
    assert not namespaces.exists(str(tmp_path / "absent"))


def _in(path_flag: str, *command: str) -> str:
    return subprocess.run(["nsenter", path_flag, *command], capture_output=True, text=True, check=True).stdout


def test_pinned_namespaces_hold_hostname_sysctls_and_a_loopback(tmp_path: Path) -> None:
    """What a container joining these namespaces will see (real adapter only: it is about the kernel)."""
    real = PinnedNamespaces(tmp_path / "run", timeout=30)
    sid = _id()
    host_before = Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text()
    made = real.create(
        sid,
        NamespaceRequest(
            hostname="pod-host",
            sysctls={"net.ipv4.ip_unprivileged_port_start": "80", "kernel.shm_rmid_forced": "1"},
        ),
    )
    try:
        assert _in(f"--uts={made.uts}", "hostname").strip() == "pod-host"
        assert (
            _in(f"--net={made.network}", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start").strip()
            == "80"
        )
        assert _in(f"--ipc={made.ipc}", "cat", "/proc/sys/kernel/shm_rmid_forced").strip() == "1"
        assert "UP" in _in(f"--net={made.network}", "ip", "-br", "link", "show", "lo")
        assert Path("/proc/sys/net/ipv4/ip_unprivileged_port_start").read_text() == host_before
    finally:
        real.remove(sid)
    assert netns_mounts(tmp_path / "run") == []


USERNS = UserNamespace(uids=(IdMapping(0, 327680, 65536),), gids=(IdMapping(0, 393216, 65536),))


def test_a_user_namespace_is_made_first_and_owns_the_others(namespaces: Namespaces) -> None:
    sid = _id()
    made = namespaces.create(
        sid,
        NamespaceRequest(hostname="in-userns", sysctls={"net.ipv4.ip_forward": "1"}, user_namespace=USERNS),
    )
    assert made.user and namespaces.exists(made.user)
    assert len({made.user, made.network, made.ipc, made.uts}) == 4
    if isinstance(namespaces, PinnedNamespaces):
        # The kernel's view: the mappings, and the user namespace that owns each of the pod's namespaces.
        assert _maps_of(made.user) == ("0 327680 65536", "0 393216 65536")
        user_inode = os.stat(made.user).st_ino
        for path in (made.network, made.ipc, made.uts):
            assert _owner_inode(path) == user_inode, path
    namespaces.remove(sid)
    assert not namespaces.exists(made.user)


def _owner_inode(path: str) -> int:
    """The inode of the user namespace owning the namespace pinned at `path` (ioctl NS_GET_USERNS)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        owner = fcntl.ioctl(fd, 0xB701)
        try:
            return os.fstat(owner).st_ino
        finally:
            os.close(owner)
    finally:
        os.close(fd)


def _maps_of(userns_path: str) -> tuple[str, str]:
    """uid_map and gid_map of a pinned user namespace, read from a process that joins it."""
    script = (
        "import ctypes, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "assert ctypes.CDLL('libc.so.6', use_errno=True).setns(fd, 0x10000000) == 0\n"
        "print(' '.join(open('/proc/self/uid_map').read().split()))\n"
        "print(' '.join(open('/proc/self/gid_map').read().split()))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, userns_path], capture_output=True, text=True, check=True
    )
    uid_map, gid_map = out.stdout.splitlines()
    return uid_map, gid_map


# ---- the helper's failure paths (real adapter only) ----------------------------------------------------


def test_a_sysctl_value_the_kernel_refuses_is_invalid_naming_it_and_leaves_nothing(tmp_path: Path) -> None:
    real = PinnedNamespaces(tmp_path / "run", timeout=30)
    sid = _id()
    with pytest.raises(InvalidArgument) as err:
        real.create(sid, NamespaceRequest(sysctls={"net.ipv4.ip_unprivileged_port_start": "not-a-number"}))
    assert str(err.value) == (
        "sysctl 'net.ipv4.ip_unprivileged_port_start': the kernel refused value 'not-a-number': "
        "Invalid argument"
    )
    assert not (tmp_path / "run" / "pods" / sid).exists()
    assert netns_mounts(tmp_path / "run") == []


def test_the_first_refused_sysctl_stops_the_pinning(tmp_path: Path) -> None:
    real = PinnedNamespaces(tmp_path / "run", timeout=30)
    sysctls = {"net.ipv4.ip_forward": "1", "net.ipv4.pcpod_missing": "1", "net.ipv4.pcpod_later": "1"}
    with pytest.raises(InvalidArgument, match=r"^sysctl 'net\.ipv4\.pcpod_later' does not exist"):
        real.create(_id(), NamespaceRequest(sysctls=dict(sorted(sysctls.items()))))
    assert netns_mounts(tmp_path / "run") == []


def test_a_missing_helper_is_an_internal_error_naming_it(tmp_path: Path) -> None:
    real = PinnedNamespaces(tmp_path / "run", timeout=30, helper=str(tmp_path / "no-pycrio-ns"))
    sid = _id()
    with pytest.raises(Internal, match=r"namespace helper .*no-pycrio-ns cannot be run .*runtime\.ns_helper"):
        real.create(sid, NamespaceRequest())
    assert not (tmp_path / "run" / "pods" / sid).exists()


def test_a_failing_helper_is_an_internal_error_with_its_stderr(tmp_path: Path) -> None:
    helper = tmp_path / "failing-helper"
    helper.write_text("#!/bin/sh\necho 'pycrio-ns pin: unshare: Operation not permitted' >&2\nexit 1\n")
    helper.chmod(0o755)
    real = PinnedNamespaces(tmp_path / "run", timeout=30, helper=str(helper))
    sid = _id()
    with pytest.raises(Internal, match="exited 1: pycrio-ns pin: unshare: Operation not permitted"):
        real.create(sid, NamespaceRequest())
    assert not (tmp_path / "run" / "pods" / sid).exists()


def test_a_sysctl_refused_inside_a_user_namespace_is_invalid_naming_it_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    # The child that made the namespaces inside the user namespace reports the refusal (exit status 3).
    real = PinnedNamespaces(tmp_path / "run", timeout=30)
    sid = _id()
    request = NamespaceRequest(sysctls={"net.ipv4.pcpod_missing": "1"}, user_namespace=USERNS)
    with pytest.raises(InvalidArgument, match=r"^sysctl 'net\.ipv4\.pcpod_missing' does not exist"):
        real.create(sid, request)
    assert not (tmp_path / "run" / "pods" / sid).exists()
    assert netns_mounts(tmp_path / "run") == []


@pytest.mark.parametrize(
    ("maps", "message"),
    [
        (["--uid-map", "0 327680 65536"], "--uid-map and --gid-map go together"),
        (["--uid-map", "0 327680", "--gid-map", "0 1 1"], "'container host length' expected"),
        (["--uid-map", "0 327680 0", "--gid-map", "0 1 1"], "a mapping needs at least one id"),
        (["--uid-map", "0 4294967295 1", "--gid-map", "0 1 1"], "a mapping runs past id 4294967294"),
        (["--uid-map", "0 4294967294 2", "--gid-map", "0 1 1"], "a mapping runs past id 4294967294"),
        (["--uid-map", "0 1 1", "--gid-map", "0 99999999999 1"], "ids are decimal numbers up to"),
        (["--uid-map", "0 1 1", "--gid-map", "-0 1 1"], "ids are decimal numbers up to"),
        (["--uid-map", "0 1 1", "--gid-map", "0  1 1"], "ids are decimal numbers up to"),
        (["--uid-map", "0 1 1,", "--gid-map", "0 1 1"], "ids are decimal numbers up to"),
        (["--uid-map", "0 1 1;2 3 4", "--gid-map", "0 1 1"], "mappings are separated by commas"),
        (["--uid-map", ",".join(f"{i} {i + 100} 1" for i in range(6)), "--gid-map", "0 1 1"], "more than 5"),
    ],
)
def test_the_helper_refuses_user_namespace_maps_it_cannot_check_before_making_anything(
    tmp_path: Path, maps: list[str], message: str
) -> None:
    # The domain sends only valid maps; the helper still checks what it parses (exit status 2).
    result = subprocess.run(
        [BUILT_HELPER, "pin", "--dir", str(tmp_path), "--ns", "net", *maps], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert result.stderr.startswith("pycrio-ns pin: --") and message in result.stderr
    assert list(tmp_path.iterdir()) == []

"""Contracts of the smaller pod ports: InfraProcesses (fake vs catatonit), PodFiles (fake vs disk) and
Cgroups (fake vs the host's v1 hierarchies vs a unified v2 tree)."""

import fcntl
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from adapters.cgroups.cgroupfs import CgroupFs
from adapters.namespaces.catatonit import CatatonitInfra
from adapters.namespaces.pinned import PinnedNamespaces
from adapters.podfiles.on_disk import PodFilesOnDisk
from domain.errors import Internal, InvalidArgument
from domain.id_mappings import IdMapping, UserNamespace
from ports.cgroups import Cgroups
from ports.infra import InfraProcesses, InfraSpec
from ports.namespaces import NamespaceRequest
from ports.pod_files import PodFileContents, PodFiles
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.pod_files import FakePodFiles
from tests.pod_host import netns_mounts

TEST_CGROUP_PARENT = "pycrio-test-pods"


# ---- InfraProcesses ----------------------------------------------------------------------------------


@pytest.fixture(params=["fake", "catatonit"])
def infra(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[InfraProcesses, InfraSpec]]:
    sid = secrets.token_hex(32)
    if request.param == "fake":
        yield FakeInfraProcesses(), InfraSpec(sid)
        return
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    made = namespaces.create(sid, NamespaceRequest())
    real = CatatonitInfra(tmp_path / "run", "/usr/bin/catatonit", timeout=30)
    yield real, InfraSpec(sid, made.network, made.ipc, made.uts, new_pid_namespace=True)
    real.stop(sid, None, 5)
    namespaces.remove(sid)
    assert netns_mounts(tmp_path / "run") == []


def test_infra_runs_until_stopped(infra: tuple[InfraProcesses, InfraSpec]) -> None:
    processes, spec = infra
    process = processes.start(spec)
    assert processes.alive(process)
    assert processes.find(spec.sandbox_id) == process
    processes.stop(spec.sandbox_id, process, 5)
    assert not processes.alive(process)
    assert processes.find(spec.sandbox_id) is None
    processes.stop(spec.sandbox_id, process, 5)


def test_infra_is_found_by_sandbox_after_a_crash(infra: tuple[InfraProcesses, InfraSpec]) -> None:
    processes, spec = infra
    process = processes.start(spec)
    processes.stop(spec.sandbox_id, None, 5)
    assert not processes.alive(process)


def test_exited_names_the_dead_among_many_in_one_look(infra: tuple[InfraProcesses, InfraSpec]) -> None:
    processes, spec = infra
    process = processes.start(spec)
    assert processes.alive(process)  # watched from now on
    assert processes.exited([process]) == set()
    assert processes.exited([]) == set()
    processes.stop(spec.sandbox_id, process, 5)
    assert processes.exited([process]) == {process}
    assert processes.exited([process]) == {process}  # asked again, still gone


def test_catatonit_holds_the_pod_namespaces_and_a_pid_namespace(tmp_path: Path) -> None:
    sid = secrets.token_hex(32)
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    made = namespaces.create(sid, NamespaceRequest(hostname="infra-host"))
    real = CatatonitInfra(tmp_path / "run", "/usr/bin/catatonit", timeout=30)
    process = real.start(InfraSpec(sid, made.network, made.ipc, made.uts, new_pid_namespace=True))
    try:
        for kind, path in (("net", made.network), ("ipc", made.ipc), ("uts", made.uts)):
            assert os.stat(f"/proc/{process.pid}/ns/{kind}").st_ino == os.stat(path).st_ino
        assert os.stat(process.pid_namespace).st_ino != os.stat("/proc/self/ns/pid").st_ino
        assert os.readlink(f"/proc/{process.pid}/root") == "/"  # its own root: the empty tmpfs
        status = Path(f"/proc/{process.pid}/status").read_text()
        assert "NSpid:\t" in status and status.split("NSpid:\t")[1].split()[1] == "1"  # PID 1 inside
        # It holds no host mount, so it pins no other pod's namespace.
        mounts = Path(f"/proc/{process.pid}/mountinfo").read_text().splitlines()
        assert len(mounts) <= 2, mounts
    finally:
        real.stop(sid, process, 5)
        namespaces.remove(sid)


def test_catatonit_in_a_user_namespace_runs_as_the_pod_s_root_and_its_pid_namespace_is_the_pod_s(
    tmp_path: Path,
) -> None:
    sid = secrets.token_hex(32)
    namespaces = PinnedNamespaces(tmp_path / "run", timeout=30)
    userns = UserNamespace(uids=(IdMapping(0, 589824, 65536),), gids=(IdMapping(0, 655360, 65536),))
    made = namespaces.create(sid, NamespaceRequest(hostname="infra-host", user_namespace=userns))
    real = CatatonitInfra(tmp_path / "run", "/usr/bin/catatonit", timeout=30)
    process = real.start(
        InfraSpec(sid, made.network, made.ipc, made.uts, user=made.user, new_pid_namespace=True)
    )
    try:
        proc = Path(f"/proc/{process.pid}")
        assert os.stat(proc / "ns/user").st_ino == os.stat(made.user).st_ino
        assert (proc / "uid_map").read_text().split() == ["0", "589824", "65536"]
        status = (proc / "status").read_text()
        assert "Uid:\t589824\t589824" in status and "Gid:\t655360\t655360" in status
        # The PID namespace it holds belongs to the pod's user namespace: containers in it may join it.
        fd = os.open(process.pid_namespace, os.O_RDONLY)
        try:
            owner = fcntl.ioctl(fd, 0xB701)  # NS_GET_USERNS
            assert os.fstat(owner).st_ino == os.stat(made.user).st_ino
            os.close(owner)
        finally:
            os.close(fd)
    finally:
        real.stop(sid, process, 5)
        namespaces.remove(sid)


def test_files_of_a_user_namespaced_pod_are_its_root_s(tmp_path: Path) -> None:
    real = PodFilesOnDisk(tmp_path / "run")
    sid = secrets.token_hex(32)
    paths = real.write(sid, PodFileContents("h", "", "", owner=(589824, 655360)))
    try:
        for path in (paths.hostname, paths.hosts, paths.resolv_conf, paths.shm):
            found = os.stat(path)
            assert (found.st_uid, found.st_gid) == (589824, 655360), path
    finally:
        real.remove(sid)


def test_catatonit_joins_the_cgroup(tmp_path: Path) -> None:
    cgroups = CgroupFs()
    path = f"/{TEST_CGROUP_PARENT}/infra-{secrets.token_hex(4)}"
    sid = secrets.token_hex(32)
    cgroups.create(path)
    real = CatatonitInfra(tmp_path / "run", "/usr/bin/catatonit", timeout=30)
    try:
        process = real.start(InfraSpec(sid, cgroup_procs=tuple(cgroups.procs_files(path))))
        for procs in cgroups.procs_files(path):
            assert Path(procs).read_text().split() == [str(process.pid)]
        real.stop(sid, process, 5)
    finally:
        real.stop(sid, None, 5)
        cgroups.remove(path)
    assert not cgroups.exists(path)


def test_an_init_that_cannot_be_mounted_fails_clearly_and_leaves_no_process(tmp_path: Path) -> None:
    """The helper's child reports what failed before the exec; nothing is left running or mounted."""
    not_a_file = tmp_path / "init-dir"
    not_a_file.mkdir()
    real = CatatonitInfra(tmp_path / "run", str(not_a_file), timeout=30)
    sid = secrets.token_hex(32)
    with pytest.raises(Internal, match=r"infra process failed to start: mount .*init-dir: Not a directory"):
        real.start(InfraSpec(sid))
    assert real.find(sid) is None
    assert _processes_naming(str(tmp_path)) == []  # neither the helper nor its child lingers
    real.stop(sid, None, 5)
    assert netns_mounts(tmp_path / "run") == []


def test_a_missing_namespace_to_join_fails_naming_it(tmp_path: Path) -> None:
    real = CatatonitInfra(tmp_path / "run", "/usr/bin/catatonit", timeout=30)
    sid = secrets.token_hex(32)
    absent = tmp_path / "no-such-netns"
    with pytest.raises(Internal, match=f"open {absent}: No such file or directory"):
        real.start(InfraSpec(sid, network=str(absent)))
    real.stop(sid, None, 5)


def _processes_naming(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


# ---- PodFiles -----------------------------------------------------------------------------------------


@pytest.fixture(params=["fake", "disk"])
def pod_files(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[PodFiles, Callable[[str], str]]]:
    if request.param == "fake":
        fake = FakePodFiles()
        yield fake, fake.read
        return
    real = PodFilesOnDisk(tmp_path / "run")
    yield real, lambda path: Path(path).read_text()
    for pod in (tmp_path / "run" / "pods").glob("*"):
        real.remove(pod.name)
    assert netns_mounts(tmp_path / "run") == []


def test_files_hold_what_was_asked(pod_files: tuple[PodFiles, Callable[[str], str]]) -> None:
    files, read = pod_files
    sid = secrets.token_hex(32)
    paths = files.write(sid, PodFileContents("web-1", "127.0.0.1\tlocalhost\n", "nameserver 10.0.0.10\n"))
    assert read(paths.hostname) == "web-1\n"
    assert read(paths.hosts) == "127.0.0.1\tlocalhost\n"
    assert read(paths.resolv_conf) == "nameserver 10.0.0.10\n"
    assert paths.shm != "/dev/shm"
    files.remove(sid)
    files.remove(sid)
    with pytest.raises(FileNotFoundError):
        read(paths.hostname)


def test_node_files_when_none_given_and_host_shm(pod_files: tuple[PodFiles, Callable[[str], str]]) -> None:
    files, read = pod_files
    paths = files.write(secrets.token_hex(32), PodFileContents("node", None, None, private_shm=False))
    assert paths.shm == "/dev/shm"
    assert read(paths.resolv_conf)


def test_shm_is_a_64m_tmpfs(tmp_path: Path) -> None:
    real = PodFilesOnDisk(tmp_path / "run")
    sid = secrets.token_hex(32)
    paths = real.write(sid, PodFileContents("h", "", ""))
    df = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE,SIZE,OPTIONS", paths.shm], capture_output=True, text=True
    )
    fstype, size, options = df.stdout.split()
    assert (fstype, size) == ("tmpfs", "64M")
    assert {"nosuid", "nodev", "noexec"} <= set(options.split(","))
    real.write(sid, PodFileContents("h2", "", ""))  # rewriting does not stack a second mount
    assert netns_mounts(tmp_path / "run") == [paths.shm]
    real.remove(sid)
    assert netns_mounts(tmp_path / "run") == []


def test_a_missing_log_directory_is_made_without_symlinks_and_only_it_is_removed(tmp_path: Path) -> None:
    real = PodFilesOnDisk(tmp_path / "run")
    kept = tmp_path / "var-log"
    kept.mkdir()
    made = kept / "pods" / "ns_pod_uid"
    sid = secrets.token_hex(32)
    real.write(sid, PodFileContents("h", "", "", log_directory=str(made)))
    assert made.is_dir() and (made.stat().st_mode & 0o777) == 0o700
    (made / "ctr").mkdir()
    (made / "ctr" / "0.log").write_text("a log line\n")
    (made / "link").symlink_to(tmp_path / "outside")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "precious").write_text("x")
    real.remove(sid)
    assert not (kept / "pods").exists() and kept.is_dir()
    assert (tmp_path / "outside" / "precious").read_text() == "x"  # the link went, not what it named

    existing = kept / "existing"
    existing.mkdir()
    other = secrets.token_hex(32)
    real.write(other, PodFileContents("h", "", "", log_directory=str(existing)))
    real.remove(other)
    assert existing.is_dir()  # the kubelet's directory stays


def test_a_log_directory_the_pod_made_is_removed_after_a_reboot_emptied_the_run_dir(tmp_path: Path) -> None:
    records = tmp_path / "root" / "pods"
    (tmp_path / "var-log").mkdir()  # the node's, kept
    made = tmp_path / "var-log" / "pods" / "ns_pod_uid"
    sid = secrets.token_hex(32)
    paths = PodFilesOnDisk(tmp_path / "run", records_dir=records).write(
        sid, PodFileContents("h", "", "", log_directory=str(made))
    )
    (made / "ctr").mkdir()
    (made / "ctr" / "0.log").write_text("a line from before the reboot\n")
    # The reboot: the shm mount and the run dir (a tmpfs) are gone, the record on disk is not.
    subprocess.run(["umount", "-l", paths.shm], check=True)
    subprocess.run(["rm", "-rf", str(tmp_path / "run")], check=True)
    PodFilesOnDisk(tmp_path / "run", records_dir=records).remove(sid)
    assert not (tmp_path / "var-log" / "pods").exists() and (tmp_path / "var-log").is_dir()
    assert list(records.iterdir()) == []


@pytest.mark.parametrize("how", ["symlinked parent", "symlinked directory", "below a file"])
def test_a_log_directory_through_a_symlink_or_a_file_is_refused(tmp_path: Path, how: str) -> None:
    real = PodFilesOnDisk(tmp_path / "run")
    target = tmp_path / "etc"
    target.mkdir()
    if how == "symlinked parent":
        (tmp_path / "logs").symlink_to(target)
        log_directory = tmp_path / "logs" / "pod"
    elif how == "symlinked directory":
        (tmp_path / "logs").symlink_to(target)
        log_directory = tmp_path / "logs"
    else:
        (tmp_path / "file").write_text("")
        log_directory = tmp_path / "file" / "pod"
    sid = secrets.token_hex(32)
    try:
        with pytest.raises(InvalidArgument, match=str(tmp_path)):
            real.write(sid, PodFileContents("h", "", "", log_directory=str(log_directory)))
    finally:
        real.remove(sid)
    assert list(target.iterdir()) == []


# ---- Cgroups -------------------------------------------------------------------------------------------


@pytest.fixture(params=["fake", "v1-host", "v2-tree"])
def cgroups(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Cgroups, str]]:
    base = f"/{TEST_CGROUP_PARENT}/contract-{secrets.token_hex(4)}"
    if request.param == "fake":
        yield FakeCgroups(), base
        return
    if request.param == "v2-tree":
        root = tmp_path / "cgroup2"
        root.mkdir()
        (root / "cgroup.controllers").write_text("cpu memory pids\n")
        yield CgroupFs(root), base
        return
    real = CgroupFs()
    yield real, base
    for path in (f"{base}/pod/child", f"{base}/pod", base):
        real.remove(path)


def test_create_makes_parents_and_remove_is_idempotent(cgroups: tuple[Cgroups, str]) -> None:
    tree, base = cgroups
    path = f"{base}/pod/child"
    assert not tree.exists(path)
    tree.create(path)
    tree.create(path)
    assert tree.exists(path) and tree.exists(f"{base}/pod")
    assert all(f.endswith(f"{path}/cgroup.procs") for f in tree.procs_files(path))
    with pytest.raises(Internal):
        tree.remove(f"{base}/pod")  # it has a child
    tree.remove(path)
    tree.remove(path)
    assert not tree.exists(path)
    tree.remove(f"{base}/pod")
    tree.remove(base)


def test_create_reports_exactly_what_it_made_per_hierarchy(cgroups: tuple[Cgroups, str]) -> None:
    tree, base = cgroups
    tree.create(base.rsplit("/", 1)[0])  # the shared test parent
    names = tree.hierarchies()
    path = f"{base}/qos/pod"
    assert tree.missing(path) == {h: (base, f"{base}/qos", path) for h in names}
    assert tree.create(f"{base}/qos") == {h: (base, f"{base}/qos") for h in names}
    assert tree.missing(path) == {h: (path,) for h in names}
    assert tree.create(path) == {h: (path,) for h in names}
    assert tree.create(path) == {}
    assert tree.missing(path) == {}

    # Removed from one hierarchy only: only that one is missing it, and only there is it made again.
    first = names[0]
    tree.remove(path, [first])
    assert tree.missing(path) == {first: (path,)}
    assert not tree.exists(path)
    assert tree.create(path) == {first: (path,)}
    tree.remove(path, names)
    tree.remove(path, names)
    tree.remove(f"{base}/qos")
    tree.remove(base)
    assert tree.missing(base) == {h: (base,) for h in names}


def test_v1_hierarchies_are_each_mount_once_with_the_hybrid_unified_tree() -> None:
    names = CgroupFs().hierarchies()
    mounted = {os.path.basename(os.path.realpath(p)) for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir()}
    assert set(names) == mounted
    assert len(names) == len(set(names))


def test_v1_cpuset_cgroups_can_take_processes() -> None:
    tree = CgroupFs()
    path = f"/{TEST_CGROUP_PARENT}/cpuset-{secrets.token_hex(4)}/pod"
    tree.create(path)
    try:
        cpus = Path(f"/sys/fs/cgroup/cpuset{path}/cpuset.cpus").read_text().strip()
        assert cpus == Path("/sys/fs/cgroup/cpuset/cpuset.cpus").read_text().strip()
    finally:
        tree.remove(path)
        tree.remove(path.rsplit("/", 1)[0])


def test_v1_cgroups_made_concurrently_under_a_new_parent_all_get_cpus() -> None:
    import threading

    tree = CgroupFs()
    parent = f"/{TEST_CGROUP_PARENT}/race-{secrets.token_hex(4)}"
    children = [f"{parent}/pod{i}" for i in range(12)]
    threads = [threading.Thread(target=tree.create, args=(child,)) for child in children]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        for child in children:
            assert Path(f"/sys/fs/cgroup/cpuset{child}/cpuset.cpus").read_text().strip()
            assert Path(f"/sys/fs/cgroup/cpuset{child}/cpuset.mems").read_text().strip()
    finally:
        for child in children:
            tree.remove(child)
        tree.remove(parent)

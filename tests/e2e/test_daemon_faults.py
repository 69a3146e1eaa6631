"""Faults of the daemon's own process and of what it keeps on the host, injected against the real daemon,
runc and conmon: the daemon out of file descriptors, stopped (SIGSTOP) while containers exit, its state dir
read-only; conmon stopped during a stop or remove; a pod's run dir, shm or netns pin taken away.

Each must end in a clear gRPC status naming what went wrong (never INTERNAL from an OSError), bounded in
time, with nothing lost: once the fault is gone the same requests work and every exit is known.
"""

import contextlib
import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient, connect
from tests.e2e.containers_support import (
    container_config,
    force_delete_runc_containers,
    pod_config,
    remove_pods,
    start_private_daemon,
    status,
    wait_until,
)
from tests.e2e.daemon import Daemon
from tests.pod_host import cleanup_run_dir, netns_mounts, unused_octet, veths_on

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

TIMEOUT = 8  # runtime.subprocess_timeout
BRIDGE = f"pcdfl{secrets.token_hex(2)}"  # per run: two runs of this module may overlap


@dataclass
class Env:
    daemon: Daemon
    work: Path
    pods: list[str] = field(default_factory=list)

    @property
    def client(self) -> CriClient:
        return self.daemon.client

    def pod(self) -> tuple[str, pb.PodSandboxConfig]:
        host_network = pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))
        config = pod_config(
            f"dfaults-{uuid.uuid4().hex[:6]}", self.work / "logs", security_context=host_network
        )
        pod_id = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, config

    def create(
        self, pod: tuple[str, pb.PodSandboxConfig], name: str, command: list[str] | None = None
    ) -> str:
        config = container_config(name, command or ["sleep", "1000"])
        request = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
        container_id: str = self.client.runtime.CreateContainer(request).container_id
        return container_id

    def run(self, pod: tuple[str, pb.PodSandboxConfig], name: str, command: list[str] | None = None) -> str:
        container_id = self.create(pod, name, command)
        self.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))
        return container_id

    def stop(self, container_id: str, timeout: int = 0) -> None:
        self.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=timeout))

    def remove(self, container_id: str) -> None:
        self.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pctest-dfaults")
    (work / "logs").mkdir()
    daemon, parent = start_private_daemon(
        work, "dfaults", BRIDGE, f"10.86.{unused_octet()}.0/24", [f"runtime.subprocess_timeout={TIMEOUT}"]
    )
    env = Env(daemon, work)
    try:
        yield env
    finally:
        with contextlib.suppress(Exception):
            remove_pods(env.daemon.client, env.pods)
        daemon.stop(signal.SIGKILL) if daemon.process and daemon.process.poll() is None else None
        left_runc = force_delete_runc_containers(work / "runc")
        cleanup_run_dir(work / "pycrio" / "run")
        for mount in sorted(netns_mounts(work), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        left_cgroups = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not left_runc, f"runc containers left: {left_runc}"
        assert not left_cgroups, f"cgroups left: {left_cgroups}"


def _code(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


# --- out of file descriptors -------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_fds_left(pid: int) -> Iterator[None]:
    """The daemon's soft RLIMIT_NOFILE lowered to 3, then restored: a new descriptor takes the lowest free
    number, which is 3 or more (stdin, stdout and stderr stay open), so every open fails with EMFILE
    whatever the daemon closes meanwhile."""
    soft, hard = resource.prlimit(pid, resource.RLIMIT_NOFILE)
    resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, hard))
    try:
        yield
    finally:
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (soft, hard))


def _kept_for_containers(env: Env) -> dict[str, set[str]]:
    """The container ids the daemon keeps something for on the host, by place."""
    pycrio = env.work / "pycrio"
    places = {
        "bundles": pycrio / "run" / "containers",
        "monitors": pycrio / "run" / "conmon",
        "exits": pycrio / "run" / "exits",
        "layers": pycrio / "root" / "storage" / "containers",
        "records": pycrio / "root" / "state" / "containers",
    }
    kept = {
        where: {path.name.removesuffix(".json") for path in place.glob("*")}
        for where, place in places.items()
    }
    runc = ["runc", "--root", str(env.work / "runc"), "list", "-q"]
    kept["runc"] = set(subprocess.run(runc, capture_output=True, text=True, check=False).stdout.split())
    return kept


def _nothing_unlisted(env: Env) -> None:
    listed = {
        container.id for container in env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    }
    for where, ids in _kept_for_containers(env).items():
        assert ids <= listed, f"{where} keeps {sorted(ids - listed)}"


def test_out_of_file_descriptors_is_resource_exhausted_and_the_daemon_recovers(env: Env) -> None:
    """Every call that needs a descriptor answers RESOURCE_EXHAUSTED naming what it was opening (before:
    INTERNAL with an OSError, and a create whose undo failed left a container no stop could end, so the
    pod could never be removed). Once descriptors are free the same calls work and nothing is left."""
    pod = env.pod()
    running = env.run(pod, "fd-running")
    ending = env.run(pod, "fd-ending")
    ending_init = _init_pid(env, ending)
    events = env.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=120)
    events.initial_metadata()
    assert env.daemon.process is not None
    with _no_fds_left(env.daemon.process.pid):
        os.kill(ending_init, signal.SIGKILL)  # its exit reaches the watchers while no descriptor is free
        wait_until(lambda: not Path(f"/proc/{ending_init}/status").exists(), what="the init to be gone")
        calls = {
            "CreateContainer": lambda: env.create(pod, "fd-new"),
            "RunPodSandbox": env.pod,
            "ExecSync": lambda: env.client.runtime.ExecSync(
                pb.ExecSyncRequest(container_id=running, cmd=["true"], timeout=10)
            ),
            "StopContainer": lambda: env.stop(running),
            "PullImage": lambda: env.client.image.PullImage(
                pb.PullImageRequest(image=pb.ImageSpec(image="127.0.0.1:9/nothing:here"))
            ),
            "ListContainers": lambda: env.client.runtime.ListContainers(pb.ListContainersRequest()),
            "ListContainerStats": lambda: env.client.runtime.ListContainerStats(
                pb.ListContainerStatsRequest()
            ),
            "ImageFsInfo": lambda: env.client.image.ImageFsInfo(pb.ImageFsInfoRequest()),
        }
        answers = {name: _code(call) for name, call in calls.items()}
    for name, (code, details) in answers.items():
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, f"{name}: {code} {details}"
        assert "out of file descriptors" in details, f"{name}: {details}"
    assert "rpc crashed" not in env.daemon.log()
    # The fds are back: new clients connect, the same requests work, and nothing was lost or half made.
    connect(env.daemon.socket).close()
    stopped = next(e for e in events if e.container_id == ending)
    events.cancel()
    assert stopped.container_event_type == pb.CONTAINER_STOPPED_EVENT
    assert status(env.client, ending).status.exit_code == 137
    assert status(env.client, running).status.state == pb.CONTAINER_RUNNING
    created = env.create(pod, "fd-new")  # the name the failed create had reserved is free
    _nothing_unlisted(env)  # what the failed create's undo could not remove is gone now
    env.stop(running)
    assert status(env.client, running).status.state == pb.CONTAINER_EXITED
    for container_id in (running, created, ending):
        env.remove(container_id)
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod[0]))
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod[0]))
    _nothing_unlisted(env)


# --- the daemon or conmon stopped (SIGSTOP) -----------------------------------------------------------------


def _init_pid(env: Env, container_id: str) -> int:
    return int(json.loads(status(env.client, container_id, verbose=True).info["info"])["pid"])


def _conmon_pid(env: Env, container_id: str) -> int:
    return int((env.work / "pycrio" / "run" / "conmon" / container_id / "conmon.pid").read_text())


@contextlib.contextmanager
def _stopped(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def test_a_daemon_stopped_past_the_kubelets_timeouts_learns_every_exit_when_it_continues(env: Env) -> None:
    """While the daemon is stopped the kubelet's calls time out and containers end; once it continues,
    the exits are known without anyone asking for them (an evented kubelet only listens), and each is
    announced once, with its real exit code."""
    pod = env.pod()
    containers = [env.run(pod, f"frozen-{n}") for n in range(2)]
    inits = [_init_pid(env, container_id) for container_id in containers]
    events = env.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=120)
    events.initial_metadata()
    assert env.daemon.process is not None
    with _stopped(env.daemon.process.pid):
        for pid in inits:
            os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(Path(f"/proc/{pid}/status").exists() for pid in inits), what="inits gone")
        late = _code(lambda: env.client.runtime.ListContainers(pb.ListContainersRequest(), timeout=2))
        assert late[0] == grpc.StatusCode.DEADLINE_EXCEEDED  # as the kubelet sees a stopped runtime
    stopped: dict[str, pb.ContainerEventResponse] = {}
    for event in events:
        if event.container_id in containers and event.container_event_type == pb.CONTAINER_STOPPED_EVENT:
            stopped[event.container_id] = event
            if len(stopped) == len(containers):
                break
    events.cancel()
    for container_id in containers:
        (described,) = [c for c in stopped[container_id].containers_statuses if c.id == container_id]
        assert (described.state, described.exit_code) == (pb.CONTAINER_EXITED, 137)
        assert status(env.client, container_id).status.exit_code == 137
    for container_id in containers:
        env.remove(container_id)
    _nothing_unlisted(env)


@pytest.mark.parametrize("call", ["stop", "remove"])
def test_a_stopped_conmon_bounds_stop_and_remove_and_nothing_is_left(env: Env, call: str) -> None:
    """conmon is stopped, so the container's exit is recorded by nobody: StopContainer (and RemoveContainer,
    which stops first) must answer within its bound with a clear status, the container stays listed for a
    retry, and once conmon continues the retry works and leaves nothing."""
    pod = env.pod()
    container_id = env.run(pod, f"conmon-{call}")
    conmon = _conmon_pid(env, container_id)
    with _stopped(conmon):
        action = env.stop if call == "stop" else env.remove
        code, details = _code(lambda: action(container_id))
        assert code in (grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION), f"{code} {details}"
        if code != grpc.StatusCode.OK:
            assert container_id in details and "its monitor recorded no exit" in details
            listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
            assert container_id in [container.id for container in listed]
    listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    if container_id in [container.id for container in listed]:
        env.stop(container_id)
        assert status(env.client, container_id).status.state == pb.CONTAINER_EXITED
        env.remove(container_id)
    wait_until(lambda: not Path(f"/proc/{conmon}").exists(), what="conmon to be reaped")
    _nothing_unlisted(env)  # nor an exit file that conmon wrote after it continued


# --- a read-only state dir ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[None]:
    """`path` made read-only in place (a read-only bind mount over itself), as when its file system is
    remounted read-only after errors."""
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_a_read_only_state_dir_refuses_changes_by_name_and_still_reports_exits(env: Env) -> None:
    """EROFS on the state dir: a create is FAILED_PRECONDITION naming the record and undone; an exit learnt
    meanwhile is still listed and announced (before, the list failed with the OSError and the event was
    lost); once the dir is writable again the same create works and the exit is on disk by the next save."""
    pod = env.pod()
    victim = env.run(pod, "ro-victim")
    init = _init_pid(env, victim)
    events = env.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=120)
    events.initial_metadata()
    with _read_only(env.work / "pycrio" / "root" / "state"):
        code, details = _code(lambda: env.create(pod, "ro-new"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, f"{code} {details}"
        assert "read-only file system: cannot write to record containers" in details
        os.kill(init, signal.SIGKILL)
        wait_until(lambda: _listed_state(env, victim) == pb.CONTAINER_EXITED, what="the exit listed")
        stopped = next(e for e in events if e.container_id == victim)
        events.cancel()
        assert stopped.container_event_type == pb.CONTAINER_STOPPED_EVENT
        assert "container exit not recorded on disk" in env.daemon.log()
    assert "rpc crashed" not in env.daemon.log()
    created = env.create(pod, "ro-new")
    for container_id in (victim, created):
        env.remove(container_id)
    _nothing_unlisted(env)


def _listed_state(env: Env, container_id: str) -> int | None:
    listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    return next((c.state for c in listed if c.id == container_id), None)


# --- records replaced by what is not a record ---------------------------------------------------------------


def test_records_replaced_by_directories_links_or_fifos_are_set_aside_at_start(env: Env) -> None:
    """Before, a directory in a record's place stopped the daemon's start (IsADirectoryError), a FIFO hung
    it and a link to /dev/zero filled its memory. Now each is moved aside with an error line naming it,
    and the daemon serves the rest."""
    pod = env.pod()
    survivor = env.run(pod, "survivor")
    state = env.work / "pycrio" / "root" / "state"
    env.daemon.stop()
    odd: dict[Path, Callable[[Path], None]] = {
        state / "sandboxes" / f"{'d' * 64}.json": lambda path: path.mkdir(),
        state / "containers" / f"{'c' * 64}.json": lambda path: path.symlink_to("/dev/zero"),
        state / "containers" / f"{'b' * 64}.json": lambda path: path.symlink_to(
            state / "containers" / f"{survivor}.json"
        ),
        state / "images" / f"{'f' * 64}.json": lambda path: os.mkfifo(path),
    }
    for path, make in odd.items():
        make(path)
    env.daemon.start()
    listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert [c.id for c in listed if c.id == survivor] == [survivor]
    assert not [c.id for c in listed if c.id in ("c" * 64, "b" * 64)]
    assert status(env.client, survivor).status.state == pb.CONTAINER_RUNNING
    assert env.client.image.ListImages(pb.ListImagesRequest()).images
    log = env.daemon.log()
    for path in odd:
        aside = path.with_name(path.name + ".corrupt")
        assert aside.exists() or aside.is_symlink(), f"{path} not moved aside"
        assert str(path) in log
        if aside.is_dir():
            aside.rmdir()
        else:
            aside.unlink()
    env.stop(survivor)
    env.remove(survivor)
    _nothing_unlisted(env)


# --- the daemon's run dir, a pod's shm or netns pin taken away --------------------------------------------


def test_an_exit_dir_removed_by_someone_else_still_gives_the_real_exit_code(env: Env) -> None:
    """A /run cleaner removes the exit dir while a container runs: conmon cannot write its exit file there,
    but writes the code into its own persist dir too. Before, the exit read as "conmon died" (255, Error);
    now the real code (137 for SIGKILL) is listed and announced without anyone asking."""
    pod = env.pod()
    victim = env.run(pod, "exit-dir-gone")
    init = _init_pid(env, victim)
    events = env.client.runtime.GetContainerEvents(pb.GetEventsRequest(), timeout=120)
    events.initial_metadata()
    shutil.rmtree(env.work / "pycrio" / "run" / "exits")
    os.kill(init, signal.SIGKILL)
    stopped = next(e for e in events if e.container_id == victim)
    events.cancel()
    assert stopped.container_event_type == pb.CONTAINER_STOPPED_EVENT
    (described,) = [c for c in stopped.containers_statuses if c.id == victim]
    assert (described.state, described.exit_code, described.reason) == (pb.CONTAINER_EXITED, 137, "Error")
    assert "conmon" not in described.message
    assert _listed_state(env, victim) == pb.CONTAINER_EXITED
    later = env.run(pod, "after-exit-dir-gone", ["sh", "-c", "exit 3"])  # the dir is made again
    wait_until(lambda: status(env.client, later).status.state == pb.CONTAINER_EXITED, what="the exit")
    assert status(env.client, later).status.exit_code == 3
    for container_id in (victim, later):
        env.remove(container_id)
    _nothing_unlisted(env)


@pytest.mark.parametrize("taken", ["shm", "netns", "run-dir"])
def test_a_pods_mounts_or_the_run_dir_taken_away_do_not_block_its_stop_and_removal(
    env: Env, taken: str
) -> None:
    """Someone unmounts the pod's shm or its network namespace pin, or empties pycrio's run dir (what is
    mounted stays), while the pod runs: status, exec, stop and remove still answer, and CNI DEL still frees
    the address (checked, no fix needed)."""
    config = pod_config(f"taken-{taken}-{uuid.uuid4().hex[:6]}", env.work / "logs")
    pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    env.pods.append(pod_id)
    container_id = env.run((pod_id, config), "taken")
    pod_dir = env.work / "pycrio" / "run" / "pods" / pod_id
    if taken == "shm":
        subprocess.run(["umount", "-l", str(pod_dir / "files" / "shm")], check=True)
    elif taken == "netns":
        subprocess.run(["umount", "-l", str(pod_dir / "ns" / "net")], check=True)
        (pod_dir / "ns" / "net").unlink()
    else:
        subprocess.run(["rm", "-rf", str(env.work / "pycrio" / "run")], capture_output=True, check=False)
    env.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    answer = env.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=container_id, cmd=["true"], timeout=30)
    )
    assert answer.exit_code == 0
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    ipam = env.work / "ipam" / "pctest-dfaults"
    assert not [p.name for p in ipam.glob("10.*") if p.read_text().split()[0] == pod_id]
    assert not veths_on(BRIDGE)
    _nothing_unlisted(env)


def test_calls_that_timed_out_while_the_daemon_was_stopped_leave_no_twin_when_retried(env: Env) -> None:
    """The kubelet's RunPodSandbox and CreateContainer time out against a stopped daemon, which still finds
    them queued when it continues; the kubelet's retries of the same requests get the one pod and the one
    container those made (or make them), never a second of each."""
    pod = env.pod()
    assert env.daemon.process is not None
    host_network = pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))
    pod_request = pb.RunPodSandboxRequest(
        config=pod_config(f"retried-{uuid.uuid4().hex[:6]}", env.work / "logs", security_context=host_network)
    )
    config = container_config("retried", ["sleep", "1000"])
    create = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
    with _stopped(env.daemon.process.pid):
        late_pod = _code(lambda: env.client.runtime.RunPodSandbox(pod_request, timeout=2))
        late_container = _code(lambda: env.client.runtime.CreateContainer(create, timeout=2))
        assert [late_pod[0], late_container[0]] == [grpc.StatusCode.DEADLINE_EXCEEDED] * 2
    retried_pod = wait_until(
        lambda: _retried(lambda: env.client.runtime.RunPodSandbox(pod_request).pod_sandbox_id), what="the pod"
    )
    env.pods.append(retried_pod)
    retried = wait_until(
        lambda: _retried(lambda: env.client.runtime.CreateContainer(create).container_id),
        what="the container",
    )
    pods = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert [p.id for p in pods if p.metadata.name == pod_request.config.metadata.name] == [retried_pod]
    containers = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert [c.id for c in containers if c.metadata.name == "retried"] == [retried]
    env.remove(retried)
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=retried_pod))
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=retried_pod))
    _nothing_unlisted(env)


def _retried(call: object) -> str | None:
    """A kubelet's retry: the answer, or None while the first request is still being served (the name is
    reserved by it, as cri-o says too)."""
    try:
        return str(call())  # type: ignore[operator]
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.ALREADY_EXISTS and "reserved" in (err.details() or ""):
            return None
        raise


def test_a_read_only_storage_dir_refuses_a_create_by_name_and_keeps_nothing(env: Env) -> None:
    pod = env.pod()
    with _read_only(env.work / "pycrio" / "root" / "storage"):
        code, details = _code(lambda: env.create(pod, "ro-storage"))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, f"{code} {details}"
        assert "read-only file system" in details and "storage" in details, details
        _nothing_unlisted(env)
    assert "rpc crashed" not in env.daemon.log()
    env.remove(env.create(pod, "ro-storage"))
    _nothing_unlisted(env)


def test_a_record_replaced_by_a_directory_while_the_container_runs_does_not_wedge_it(env: Env) -> None:
    """Before, the stop's save failed with IsADirectoryError (INTERNAL) and no removal could ever succeed."""
    pod = env.pod()
    container_id = env.run(pod, "record-dir")
    record = env.work / "pycrio" / "root" / "state" / "containers" / f"{container_id}.json"
    record.unlink()
    (record / "inside").mkdir(parents=True)
    env.stop(container_id)
    assert status(env.client, container_id).status.state == pb.CONTAINER_EXITED
    env.remove(container_id)
    aside = record.with_name(record.name + ".corrupt")
    assert (aside / "inside").is_dir()  # set aside for whoever put it there
    shutil.rmtree(aside)
    _nothing_unlisted(env)


def test_a_stopped_conmon_killed_after_a_stop_timed_out_leaves_nothing(env: Env) -> None:
    """conmon stopped, the stop fails within its bound; then conmon is killed rather than continued: the
    container is EXITED (255, conmon named: nobody recorded its code), removable, and nothing is left."""
    pod = env.pod()
    container_id = env.run(pod, "conmon-killed")
    conmon = _conmon_pid(env, container_id)
    os.kill(conmon, signal.SIGSTOP)
    try:
        code, details = _code(lambda: env.stop(container_id))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, f"{code} {details}"
    finally:
        os.kill(conmon, signal.SIGKILL)
    wait_until(lambda: _listed_state(env, container_id) == pb.CONTAINER_EXITED, what="a list showing EXITED")
    stopped = status(env.client, container_id).status
    assert (stopped.exit_code, stopped.reason) == (255, "Error") and "conmon" in stopped.message
    env.remove(container_id)
    wait_until(lambda: not Path(f"/proc/{conmon}").exists(), what="conmon to be reaped")
    _nothing_unlisted(env)

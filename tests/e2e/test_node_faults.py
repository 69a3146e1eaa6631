"""Faults a node sees, injected against the real daemon, runc and conmon: the OCI runtime failing or
hanging at each step, conmon killed, and full file systems (log dir, state dir).

The daemon's runtime is a wrapper around runc that reads a fault file before each call: `<step> fail`
exits 1 with a message on stderr, `<step> hang` sleeps (recording its pid) until it is killed, `<step> kill`
dies of SIGKILL. Every fault must end in a clear gRPC status carrying what went wrong, bounded by
`runtime.subprocess_timeout`, with nothing left behind (no runc container, no conmon or hung runtime
process, no bundle or monitor files), and the same request must work once the fault is gone.
"""

import concurrent.futures
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import TEST_CGROUP, remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    force_delete_runc_containers,
    pod_config,
    seed_busybox_image,
    status,
    wait_exited,
    wait_until,
    write_cni_conf,
)
from tests.e2e.daemon import Daemon
from tests.fault_programs import hung_pids, install_cni_plugin, install_runtime
from tests.pod_host import cleanup_run_dir, netns_mounts, unused_octet, veths_on

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

Pod = tuple[str, pb.PodSandboxConfig]
# Per run: the coordinator's suite and a helper's may run this module at the same time.
BRIDGE = f"pcrtf{secrets.token_hex(2)}"
OTHER_BRIDGE = f"pcrto{secrets.token_hex(2)}"
TIMEOUT = 8  # runtime.subprocess_timeout: long enough for a healthy runc on a loaded machine


@dataclass
class Env:
    daemon: Daemon
    client: CriClient
    work: Path
    faults: Path
    pods: list[str] = field(default_factory=list)
    cgroup_parent: str = ""

    def inject(self, step: str, how: str) -> None:
        (self.faults / "fault").write_text(f"{step} {how}\n")

    def heal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.faults / "fault").unlink()

    def hung_pids(self) -> list[int]:
        return hung_pids(self.faults)

    def pod(self) -> tuple[str, pb.PodSandboxConfig]:
        host_network = pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))
        name = f"faults-{uuid.uuid4().hex[:6]}"
        config = pod_config(name, self.work / "logs", security_context=host_network)
        pod_id = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, config

    def create(self, pod_id: str, pod: pb.PodSandboxConfig, name: str) -> str:
        config = container_config(name, ["sleep", "1000"])
        request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=config, sandbox_config=pod)
        container_id: str = self.client.runtime.CreateContainer(request).container_id
        return container_id

    def start(self, container_id: str) -> None:
        self.client.runtime.StartContainer(pb.StartContainerRequest(container_id=container_id))

    def remove(self, container_id: str) -> None:
        self.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))

    def containers(self) -> list[str]:
        listed = self.client.runtime.ListContainers(pb.ListContainersRequest()).containers
        return [container.id for container in listed]

    def leftovers(self) -> dict[str, list[str]]:
        """What the daemon keeps for containers on the host, to compare with the containers it lists."""
        run = self.work / "pycrio" / "run"
        files = {d: sorted(p.name for p in (run / d).glob("*")) for d in ("containers", "exits", "conmon")}
        runc = ["runc", "--root", str(self.work / "runc"), "list", "-q"]
        listed = subprocess.run(runc, capture_output=True, text=True, check=False)
        return {**files, "runc": sorted(listed.stdout.split())}


def _alive(pid: int) -> bool:
    """Running, or a zombie nobody reaped: either is a leak."""
    return Path(f"/proc/{pid}").exists()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pctest-rtfaults")
    faults = work / "faults"
    faults.mkdir()
    wrapper = install_runtime(faults, shutil.which("runc") or "/usr/sbin/runc")
    seed_busybox_image(work / "pycrio" / "root", work)
    cni = write_cni_conf(work / "net.d", work / "ipam", name="pctest-rtfaults", bridge=BRIDGE,
                         subnet=f"10.86.{unused_octet()}.0/24")  # fmt: skip
    (conflist,) = cni.glob("*.conflist")
    chain = json.loads(conflist.read_text())
    chain["plugins"].insert(1, {"type": install_cni_plugin(faults)})  # after bridge + host-local
    conflist.write_text(json.dumps(chain))
    (work / "logs").mkdir()
    parent = f"/{TEST_CGROUP}/rtfaults-{uuid.uuid4().hex[:6]}"
    daemon = Daemon(
        work / "pycrio",
        [
            f'network.cni_conf_dir="{cni}"',
            f'pods.default_cgroup_parent="{parent}"',
            f'runtime.runtimes.runc.path="{wrapper}"',
            f'runtime.runtimes.runc.root="{work / "runc"}"',
            f"runtime.subprocess_timeout={TIMEOUT}",
            f'network.cni_plugin_dirs=["{faults}", "/usr/lib/cni"]',
            f"pods.network_teardown_timeout={TIMEOUT}",
        ],
    ).start()
    env = Env(daemon, daemon.client, work, faults, cgroup_parent=parent)
    try:
        yield env
    finally:
        env.heal()
        for pod_id in env.pods:
            with contextlib.suppress(grpc.RpcError):
                env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
            with contextlib.suppress(grpc.RpcError):
                env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        daemon.stop()
        left_runc = force_delete_runc_containers(work / "runc")
        # What a failed test (or a daemon that could not start) left: infra processes, pins, rootfs mounts.
        cleanup_run_dir(work / "pycrio" / "run")
        for mount in sorted(netns_mounts(work), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        for pid in env.hung_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
        left_cgroups = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not left_runc, f"runc containers left: {left_runc}"
        assert not left_cgroups, f"cgroups left: {left_cgroups}"


@pytest.fixture
def pod(env: Env) -> Iterator[Pod]:
    env.heal()  # the hung pids of earlier tests stay recorded: the module's teardown kills any still alive
    yield env.pod()
    env.heal()


def _assert_injected_answer(error: grpc.RpcError, how: str, refusal: str | None) -> None:
    """A hung step answers DEADLINE_EXCEEDED; a failing or killed one INTERNAL, carrying what it printed."""
    expected = grpc.StatusCode.DEADLINE_EXCEEDED if how == "hang" else grpc.StatusCode.INTERNAL
    assert error.code() == expected, error.details()
    if how == "fail" and refusal is not None:
        assert refusal in error.details()


def _nothing_left(env: Env) -> None:
    listed = set(env.containers())
    for where, names in env.leftovers().items():
        assert set(names) <= listed, f"{where} keeps {sorted(set(names) - listed)}"
    hung = env.hung_pids()
    wait_until(lambda: not any(map(_alive, hung)), what=f"the hung runtime {hung} to be killed and reaped")


@pytest.mark.parametrize("how", ["fail", "kill"])
def test_a_failing_create_is_rolled_back_with_the_runtimes_words(env: Env, pod: Pod, how: str) -> None:
    pod_id, config = pod
    before = env.containers()
    env.inject("create", how)
    with pytest.raises(grpc.RpcError) as caught:
        env.create(pod_id, config, f"c-{how}")
    assert caught.value.code() == grpc.StatusCode.INTERNAL  # a clear status, not UNKNOWN
    if how == "fail":
        assert "injected: runtime create refused" in caught.value.details()
    assert env.containers() == before
    _nothing_left(env)
    env.heal()
    container_id = env.create(pod_id, config, f"c-{how}")  # the name was released
    env.start(container_id)
    assert status(env.client, container_id).status.state == pb.CONTAINER_RUNNING


def test_a_hanging_create_times_out_and_kills_the_runtime(env: Env, pod: Pod) -> None:
    pod_id, config = pod
    before = env.containers()
    hung_before = len(env.hung_pids())
    env.inject("create", "hang")
    with pytest.raises(grpc.RpcError) as caught:
        env.create(pod_id, config, "c-hang")
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, caught.value.details()
    assert len(env.hung_pids()) > hung_before, "the wrapper never ran"
    assert env.containers() == before
    _nothing_left(env)
    env.heal()
    env.start(env.create(pod_id, config, "c-hang"))


@pytest.mark.parametrize("how", ["fail", "hang", "kill"])
def test_a_failing_start_leaves_a_removable_container_that_says_why(env: Env, pod: Pod, how: str) -> None:
    pod_id, config = pod
    container_id = env.create(pod_id, config, f"s-{how}")
    env.inject("start", how)
    with pytest.raises(grpc.RpcError) as caught:
        env.start(container_id)
    _assert_injected_answer(caught.value, how, None)
    env.heal()
    state = wait_exited(env.client, container_id)
    assert state.reason == "StartError"
    if how == "fail":
        assert "injected: runtime start refused" in state.message
    env.remove(container_id)
    assert container_id not in env.containers()
    _nothing_left(env)


@pytest.mark.parametrize("how", ["fail", "hang"])
def test_a_failing_kill_is_reported_and_a_later_stop_works(env: Env, pod: Pod, how: str) -> None:
    pod_id, config = pod
    container_id = env.create(pod_id, config, f"k-{how}")
    env.start(container_id)
    env.inject("kill", how)
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
    _assert_injected_answer(caught.value, how, "injected: runtime kill refused")
    _nothing_left(env)  # the hung kill is not left running
    env.heal()
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
    assert status(env.client, container_id).status.state == pb.CONTAINER_EXITED
    env.remove(container_id)
    _nothing_left(env)


@pytest.mark.parametrize("how", ["fail", "hang"])
def test_a_failing_delete_keeps_the_container_for_a_retry(env: Env, pod: Pod, how: str) -> None:
    pod_id, config = pod
    container_id = env.create(pod_id, config, f"d-{how}")
    env.start(container_id)
    # Before the stop: the delete made as soon as the exit is noticed fails too, and leaves it to Remove.
    env.inject("delete", how)
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
    with pytest.raises(grpc.RpcError) as caught:
        env.remove(container_id)
    _assert_injected_answer(caught.value, how, "injected: runtime delete refused")
    assert container_id in env.containers()  # not forgotten while runc still has it
    env.heal()
    env.remove(container_id)
    assert container_id not in env.containers()
    _nothing_left(env)


@pytest.mark.parametrize("how", ["fail", "hang"])
def test_a_failing_exec_is_a_clear_error_and_the_container_runs_on(env: Env, pod: Pod, how: str) -> None:
    pod_id, config = pod
    container_id = env.create(pod_id, config, f"e-{how}")
    env.start(container_id)
    env.inject("exec", how)
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.ExecSync(pb.ExecSyncRequest(container_id=container_id, cmd=["true"], timeout=10))
    assert caught.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED)
    if how == "fail":
        assert "injected: runtime exec refused" in caught.value.details()
    _nothing_left(env)
    env.heal()
    request = pb.ExecSyncRequest(container_id=container_id, cmd=["true"], timeout=30)
    answer = env.client.runtime.ExecSync(request)
    assert answer.exit_code == 0
    assert status(env.client, container_id).status.state == pb.CONTAINER_RUNNING


def _conmon_pid(env: Env, container_id: str) -> int:
    return int((env.work / "pycrio" / "run" / "conmon" / container_id / "conmon.pid").read_text())


def test_conmon_killed_before_it_reports_the_pid_fails_the_create_cleanly(env: Env, pod: Pod) -> None:
    pod_id, config = pod
    before = env.containers()
    hung_before = len(env.hung_pids())
    env.inject("create", "hang")  # conmon waits on its runtime, so it has not answered yet
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        creating = pool.submit(env.create, pod_id, config, "m-early")
        wait_until(lambda: len(env.hung_pids()) > hung_before, what="the runtime to be called")
        known = set(env.containers())
        pid_files = (env.work / "pycrio" / "run" / "conmon").glob("*/conmon.pid")
        (persist,) = [path for path in pid_files if path.parent.name not in known]
        os.kill(int(persist.read_text()), signal.SIGKILL)
        with pytest.raises(grpc.RpcError) as caught:
            creating.result()
    assert caught.value.code() == grpc.StatusCode.INTERNAL, caught.value.details()
    assert "without an answer" in caught.value.details()
    assert env.containers() == before
    _nothing_left(env)


def test_conmon_killed_while_the_container_runs(env: Env, pod: Pod) -> None:
    """The process outlives conmon; a stop kills it through the runtime and the container is EXITED with an
    unknown code (255, reason Error), no zombie is left, Remove works, and a restarted daemon agrees."""
    pod_id, config = pod
    container_id = env.create(pod_id, config, "m-late")
    env.start(container_id)
    init = int(json.loads(status(env.client, container_id, verbose=True).info["info"])["pid"])
    conmon = _conmon_pid(env, container_id)
    os.kill(conmon, signal.SIGKILL)
    wait_until(lambda: not _alive(conmon), what="conmon to be reaped")
    assert status(env.client, container_id).status.state == pb.CONTAINER_RUNNING
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
    stopped = status(env.client, container_id).status
    assert (stopped.state, stopped.exit_code, stopped.reason) == (pb.CONTAINER_EXITED, 255, "Error")
    assert "conmon" in stopped.message
    wait_until(lambda: not _alive(init), what="the container's process to be reaped")
    env.daemon.stop()
    env.daemon.start()
    env.client = env.daemon.client
    again = status(env.client, container_id).status
    assert (again.state, again.exit_code, again.reason) == (pb.CONTAINER_EXITED, 255, "Error")
    env.remove(container_id)
    assert container_id not in env.containers()
    _nothing_left(env)


def _listed_state(env: Env, container_id: str) -> int | None:
    """The container's state as ListContainers alone says it (no ContainerStatus, stop or remove asked)."""
    listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    return next((c.state for c in listed if c.id == container_id), None)


def _logged_unmonitored(env: Env, container_id: str) -> bool:
    lines = env.daemon.log_path.read_text().splitlines()
    return any("died while the container runs" in line and container_id in line for line in lines)


def _init_pid(env: Env, container_id: str) -> int:
    return int(json.loads(status(env.client, container_id, verbose=True).info["info"])["pid"])


@pytest.mark.parametrize("when", ["at-once", "later"])
def test_conmon_and_then_the_process_killed_are_listed_exited_without_being_asked(
    env: Env, pod: Pod, when: str
) -> None:
    """The conmon pidfd watcher notices the dead conmon by itself: with the process gone too the container is
    EXITED (255, Error) in the next ListContainers; a process still running is left running (as cri-o leaves
    it), logged, and watched in conmon's place, so that its own end is listed the same way."""
    pod_id, config = pod
    container_id = env.create(pod_id, config, f"w-{when}")
    env.start(container_id)
    init = _init_pid(env, container_id)
    conmon = _conmon_pid(env, container_id)
    os.kill(conmon, signal.SIGKILL)
    if when == "later":
        wait_until(lambda: not _alive(conmon), what="conmon to be reaped")
        wait_until(lambda: _logged_unmonitored(env, container_id), what="the unmonitored container logged")
        assert _listed_state(env, container_id) == pb.CONTAINER_RUNNING
    os.kill(init, signal.SIGKILL)
    wait_until(lambda: _listed_state(env, container_id) == pb.CONTAINER_EXITED, what="a list showing EXITED")
    stopped = status(env.client, container_id).status
    assert (stopped.state, stopped.exit_code, stopped.reason) == (pb.CONTAINER_EXITED, 255, "Error")
    assert "conmon" in stopped.message
    env.remove(container_id)
    _nothing_left(env)


def test_conmons_are_watched_again_after_a_restart(env: Env, pod: Pod) -> None:
    pod_id, config = pod
    container_id = env.create(pod_id, config, "w-restart")
    env.start(container_id)
    init = _init_pid(env, container_id)
    env.daemon.stop()
    env.daemon.start()
    env.client = env.daemon.client
    assert _listed_state(env, container_id) == pb.CONTAINER_RUNNING
    os.kill(_conmon_pid(env, container_id), signal.SIGKILL)
    os.kill(init, signal.SIGKILL)
    wait_until(lambda: _listed_state(env, container_id) == pb.CONTAINER_EXITED, what="a list showing EXITED")
    assert status(env.client, container_id).status.exit_code == 255
    env.remove(container_id)
    _nothing_left(env)


# --- full file systems -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _small_disk(path: Path, options: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "pctest-full", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _take_inodes(directory: Path) -> Path:
    """Use up the inodes of `directory`'s file system; returns the directory to remove to free them."""
    fillers = directory / "fillers"
    with contextlib.suppress(OSError):
        fillers.mkdir()
        for number in range(100000):
            (fillers / str(number)).touch()
    return fillers


def _take_bytes(directory: Path) -> Path:
    filler = directory / "filler"
    with filler.open("wb", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
    with filler.open("ab", buffering=0) as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0")
    return filler


def test_a_full_log_dir_refuses_the_create_naming_the_log_and_leaves_nothing(env: Env) -> None:
    with _small_disk(env.work / f"logs-{uuid.uuid4().hex[:6]}", "size=1m,nr_inodes=64") as logs:
        name = f"full-{uuid.uuid4().hex[:6]}"
        host_network = pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))
        config = pod_config(name, logs, security_context=host_network)
        pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        env.pods.append(pod_id)
        before = env.containers()
        fillers = _take_inodes(logs)
        with pytest.raises(grpc.RpcError) as caught:
            env.create(pod_id, config, "log-full")
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
        assert "log-full.log" in caught.value.details()
        assert env.containers() == before
        _nothing_left(env)
        shutil.rmtree(fillers)
        container_id = env.create(pod_id, config, "log-full")  # space is back: the same request works
        env.start(container_id)
        env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


def test_a_log_dir_that_fills_up_does_not_stop_the_container(env: Env) -> None:
    with _small_disk(env.work / f"logs-{uuid.uuid4().hex[:6]}", "size=1m") as logs:
        name = f"fill-{uuid.uuid4().hex[:6]}"
        host_network = pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))
        config = pod_config(name, logs, security_context=host_network)
        pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        env.pods.append(pod_id)
        script = "i=0; while :; do i=$((i+1)); echo tick $i; echo $i > /tmp/ticks; sleep 0.2; done"
        chatty = container_config("chatty", ["sh", "-c", script])
        request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=chatty, sandbox_config=config)
        container_id = env.client.runtime.CreateContainer(request).container_id
        env.start(container_id)
        log = logs / "chatty.log"
        wait_until(lambda: log.exists() and log.stat().st_size > 0, what="the first log line")
        filler = _take_bytes(logs)
        conmon = _conmon_pid(env, container_id)
        size = log.stat().st_size
        full_at = _ticks(env, container_id)
        wait_until(lambda: _ticks(env, container_id) > full_at + 2, what="lines written into a full log dir")
        filler.unlink()
        wait_until(lambda: log.stat().st_size > size, what="log lines after space came back")
        assert _alive(conmon)
        assert status(env.client, container_id).status.state == pb.CONTAINER_RUNNING
        env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
        env.remove(container_id)
        _nothing_left(env)


def _ticks(env: Env, container_id: str) -> int:
    request = pb.ExecSyncRequest(container_id=container_id, cmd=["cat", "/tmp/ticks"], timeout=30)
    return int(env.client.runtime.ExecSync(request).stdout or 0)


def test_a_full_state_dir_refuses_the_create_naming_the_record_and_the_daemon_serves_on(env: Env) -> None:
    pod_id, config = env.pod()
    env.create(pod_id, config, "state-first")  # the containers' state dir exists
    records = env.work / "pycrio" / "root" / "state" / "containers"
    kept = {path.name: path.read_bytes() for path in records.glob("*.json")}
    before = env.containers()
    with _small_disk(records, "size=1m,nr_inodes=1024") as disk:
        for name, data in kept.items():
            (disk / name).write_bytes(data)
        filler = _take_bytes(disk)
        with pytest.raises(grpc.RpcError) as caught:
            env.create(pod_id, config, "state-full")
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value.details()
        assert "no space left to record containers" in caught.value.details()
        assert env.containers() == before
        assert not [path.name for path in disk.iterdir() if path.name.startswith(".tmp-")]
        _nothing_left(env)
        filler.unlink()
        container_id = env.create(pod_id, config, "state-full")
        env.remove(container_id)
        written = {path.name: path.read_bytes() for path in disk.glob("*.json")}
    for path in records.glob("*.json"):  # what the daemon wrote on the small disk goes back under it
        if path.name not in written:
            path.unlink()
    for name, data in written.items():
        (records / name).write_bytes(data)


# --- damaged state at start-up -----------------------------------------------------------------------------


def test_damaged_records_at_start_are_set_aside_and_the_rest_is_served(env: Env, pod: Pod) -> None:
    pod_id, config = pod
    container_id = env.create(pod_id, config, "survivor")
    env.start(container_id)
    state = env.work / "pycrio" / "root" / "state"
    env.daemon.stop()
    torn = {"sandboxes": b'{"id": "torn", "sta', "containers": b"\x00\xffgarbage"}
    for kind, data in torn.items():
        (state / kind / f"{'e' * 64}.json").write_bytes(data)  # a disk error, a crash of an older pycrio
    (state / "images" / f"{'f' * 64}.json").write_text('{"id": "' + "f" * 64 + '"}')  # fields missing
    shutil.rmtree(env.work / "pycrio" / "run" / "containers" / container_id)  # its bundle is gone too
    env.daemon.start()
    env.client = env.daemon.client
    pods = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert pod_id in [item.id for item in pods]
    assert container_id in env.containers()
    images = env.client.image.ListImages(pb.ListImagesRequest()).images
    assert [image.id for image in images if image.id.startswith("f" * 12)] == []
    assert len(images) >= 1  # the good image is still served
    log = env.daemon.log()
    for kind in torn:
        assert (state / kind / f"{'e' * 64}.json.corrupt").read_bytes() == torn[kind]
        assert f"/{kind}/{'e' * 64}.json" in log
    assert "unreadable state record moved aside" in log
    assert "unreadable image record skipped" in log
    assert status(env.client, container_id).status.state == pb.CONTAINER_RUNNING
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
    env.remove(container_id)
    _nothing_left(env)
    (state / "images" / f"{'f' * 64}.json").unlink()


# --- CNI plugin faults, through the daemon ----------------------------------------------------------------


def _pod_network_leftovers(env: Env) -> dict[str, list[str]]:
    """Pod state on the host: addresses host-local still holds, veths on the bridge, pinned namespaces and
    cgroups of pods the daemon does not list."""
    listed = [item.id for item in env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items]
    ipam = env.work / "ipam" / "pctest-rtfaults"
    held = [path.name for path in ipam.glob("10.*")] if ipam.is_dir() else []
    pins = netns_mounts(env.work / "pycrio" / "run")
    pod_cgroups = (Path("/sys/fs/cgroup/memory") / env.cgroup_parent.lstrip("/")).glob("pycrio-*")
    return {
        "ipam": held,
        "veths": veths_on(BRIDGE),
        "pins": [pin for pin in pins if not any(pod_id in pin for pod_id in listed)],
        "cgroups": [path.name for path in pod_cgroups if path.name.removeprefix("pycrio-") not in listed],
    }


def _refused_add(env: Env, how: str) -> tuple[grpc.RpcError, pb.PodSandboxConfig, dict[str, list[str]]]:
    """A RunPodSandbox whose CNI ADD misbehaves `how`: its error, the pod's config, and the network leftovers
    there were before it."""
    env.heal()
    before = _pod_network_leftovers(env)
    env.inject("ADD", how)
    config = pod_config(f"add-{how}-{uuid.uuid4().hex[:6]}", env.work / "logs")
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    return caught.value, config, before


@pytest.mark.parametrize("how", ["fail", "kill", "hang"])
def test_a_cni_add_that_fails_or_hangs_fails_the_pod_and_undoes_it(env: Env, how: str) -> None:
    refused, config, before = _refused_add(env, how)
    _assert_injected_answer(refused, how, "injected: pcfault refused ADD")
    assert _pod_network_leftovers(env) == before
    _nothing_left(env)  # a hung plugin is killed and reaped
    env.heal()
    pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert _pod_network_leftovers(env) == before


def test_a_cni_del_that_always_fails_does_not_block_stop_or_remove(env: Env) -> None:
    """As cri-o (not containerd, whose RemovePodSandbox then fails forever): DEL is retried for
    pods.network_teardown_timeout, then given up with a warning, and the pod goes. What the plugin never
    freed stays with it (here host-local's address, freed below by a healthy DEL of our own)."""
    env.heal()
    config = pod_config(f"del-{uuid.uuid4().hex[:6]}", env.work / "logs")
    pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    env.inject("DEL", "fail")
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    listed = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert pod_id not in [item.id for item in listed]
    assert "giving up on network teardown" in env.daemon.log()
    env.heal()
    ipam = env.work / "ipam" / "pctest-rtfaults"
    for held in ipam.glob("10.*"):
        if held.read_text().split()[0] == pod_id:
            held.unlink()


@pytest.mark.parametrize(
    ("how", "said"), [("garbage", "pcfault ADD printed no JSON"), ("endless", "pcfault printed more than")]
)
def test_a_cni_add_that_prints_garbage_or_without_end_fails_the_pod_and_undoes_it(
    env: Env, how: str, said: str
) -> None:
    """A result that is not JSON, or output without end (read up to the runner's cap, then the plugin is
    killed: before, the daemon read it all into memory until the timeout)."""
    refused, _, before = _refused_add(env, how)
    assert refused.code() == grpc.StatusCode.INTERNAL, refused.details()
    assert said in refused.details()
    assert _pod_network_leftovers(env) == before
    _nothing_left(env)  # the endless plugin is killed and reaped


def test_a_cni_plugin_leaving_a_process_on_its_output_does_not_hang_the_pod(env: Env) -> None:
    """The plugin does its work and exits, but a process it left in a session of its own holds its stdout:
    the answer must not wait for that process (before, RunPodSandbox and StopPodSandbox hung for as long as
    it lived). It is not pycrio's to kill: the test does."""
    env.heal()
    before = _pod_network_leftovers(env)
    lingering_before = set(env.hung_pids())
    try:
        env.inject("ADD", "linger")
        config = pod_config(f"linger-{uuid.uuid4().hex[:6]}", env.work / "logs")
        pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        env.pods.append(pod_id)
        env.inject("DEL", "linger")
        env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert _pod_network_leftovers(env) == before
        assert "left a process holding its output open" in env.daemon.log()
    finally:
        env.heal()
        for pid in set(env.hung_pids()) - lingering_before:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_a_cni_del_that_hangs_is_cut_and_the_pod_still_goes(env: Env) -> None:
    env.heal()
    config = pod_config(f"delhang-{uuid.uuid4().hex[:6]}", env.work / "logs")
    pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    hung_before = len(env.hung_pids())
    env.inject("DEL", "hang")
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert len(env.hung_pids()) > hung_before, "the plugin never hung"
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    listed = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert pod_id not in [item.id for item in listed]
    _nothing_left(env)  # every hung DEL was killed and reaped
    env.heal()
    ipam = env.work / "ipam" / "pctest-rtfaults"
    for held in ipam.glob("10.*"):
        if held.read_text().split()[0] == pod_id:
            held.unlink()


@pytest.mark.parametrize("change", ["removed", "replaced"])
def test_a_cni_config_changed_while_the_pod_runs_is_not_used_to_tear_it_down(env: Env, change: str) -> None:
    """The conflist is removed, or replaced by one for another network, while a pod runs: StopPodSandbox
    still runs DEL with the config its ADD used (kept with the pod), so the address and the veth are freed;
    the node says NetworkReady false while there is no config, and the next pod uses the new one."""
    env.heal()
    before = _pod_network_leftovers(env)
    config = pod_config(f"conf-{change}-{uuid.uuid4().hex[:6]}", env.work / "logs")
    pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    (conflist,) = (env.work / "net.d").glob("*.conflist")
    original = conflist.read_text()
    try:
        if change == "removed":
            conflist.unlink()
            conditions = env.client.runtime.Status(pb.StatusRequest()).status.conditions
            assert [c.status for c in conditions if c.type == "NetworkReady"] == [False]
        else:
            other = json.loads(original)
            other["name"] = "pctest-rtfaults-other"
            other_prefix = f"10.86.{unused_octet()}."
            other["plugins"][0]["bridge"] = OTHER_BRIDGE
            other["plugins"][0]["ipam"]["ranges"] = [[{"subnet": f"{other_prefix}0/24"}]]
            conflist.write_text(json.dumps(other))
        env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        assert _pod_network_leftovers(env) == before
        if change == "replaced":
            config = pod_config(f"conf-new-{uuid.uuid4().hex[:6]}", env.work / "logs")
            request = pb.RunPodSandboxRequest(config=config)
            new_pod = env.client.runtime.RunPodSandbox(request).pod_sandbox_id
            answer = env.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=new_pod))
            assert answer.status.network.ip.startswith(other_prefix)
            env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=new_pod))
            env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=new_pod))
            assert not veths_on(OTHER_BRIDGE)
    finally:
        conflist.write_text(original)
        subprocess.run(["ip", "link", "del", OTHER_BRIDGE], capture_output=True, check=False)


def test_a_kubelet_giving_up_on_a_hung_cni_add_and_retrying_gets_one_pod_and_no_leftovers(env: Env) -> None:
    """The kubelet's deadline passes while ADD hangs (before the daemon's own timeout): its retries of the
    same request are told the name is reserved while the first is still running, the first is undone once the
    plugin is cut, and a retry after the fault is gone makes the one pod."""
    env.heal()
    before = _pod_network_leftovers(env)
    config = pod_config(f"kubelet-retry-{uuid.uuid4().hex[:6]}", env.work / "logs")
    request = pb.RunPodSandboxRequest(config=config)
    env.inject("ADD", "hang")
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.RunPodSandbox(request, timeout=2)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    with pytest.raises(grpc.RpcError) as retried:
        env.client.runtime.RunPodSandbox(request, timeout=2)
    assert retried.value.code() in (grpc.StatusCode.ALREADY_EXISTS, grpc.StatusCode.DEADLINE_EXCEEDED)
    env.heal()
    pod_id = wait_until(lambda: _retry_run(env, request), timeout=60, what="a retry to make the pod")
    listed = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert [item.id for item in listed if item.metadata.name == config.metadata.name] == [pod_id]
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert _pod_network_leftovers(env) == before
    _nothing_left(env)


def _retry_run(env: Env, request: pb.RunPodSandboxRequest) -> str | None:
    try:
        return str(env.client.runtime.RunPodSandbox(request).pod_sandbox_id)
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.ALREADY_EXISTS and "reserved" in (err.details() or ""):
            return None
        raise


def test_a_cni_del_that_succeeds_but_prints_garbage_is_a_success(env: Env) -> None:
    """libcni reads no result from DEL: one that exits 0 succeeded, whatever it printed. Before, its output
    was parsed, the DEL counted as failed and retried until pods.network_teardown_timeout, then given up."""
    env.heal()
    before = _pod_network_leftovers(env)
    config = pod_config(f"delgarbage-{uuid.uuid4().hex[:6]}", env.work / "logs")
    pod_id = env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
    env.inject("DEL", "garbage")
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    assert _pod_network_leftovers(env) == before
    assert "pcfault DEL printed no JSON" not in env.daemon.log()

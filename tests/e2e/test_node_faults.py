"""The OCI runtime failing or hanging at each step, against the real daemon, runc and conmon.

The daemon's runtime is a wrapper around runc that reads a fault file before each call: `<step> fail`
exits 1 with a message on stderr, `<step> hang` sleeps (recording its pid) until it is killed, `<step> kill`
dies of SIGKILL. Every fault must end in a clear gRPC status carrying what the runtime said, bounded by
`runtime.subprocess_timeout`, with nothing left behind (no runc container, no conmon or hung runtime
process, no bundle or monitor files), and the same request must work once the runtime is healthy again.
"""

import contextlib
import os
import shutil
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

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

Pod = tuple[str, pb.PodSandboxConfig]
TIMEOUT = 8  # runtime.subprocess_timeout: long enough for a healthy runc on a loaded machine
_WRAPPER = """#!/bin/sh
# runc, unless the fault file names this call's step: "<step> fail|hang|kill".
for arg in "$@"; do
  case "$arg" in create|start|kill|delete|exec|state) step=$arg; break;; esac
done
if [ -f @DIR@/fault ]; then
  read want how < @DIR@/fault
  if [ "$want" = "$step" ]; then
    case "$how" in
      fail) echo "injected: runtime $step refused" >&2; exit 1;;
      hang) echo $$ >> @DIR@/hung; exec sleep 100000;;
      kill) kill -KILL $$;;
    esac
  fi
fi
exec @RUNC@ "$@"
"""


@dataclass
class Env:
    daemon: Daemon
    client: CriClient
    work: Path
    faults: Path
    pods: list[str] = field(default_factory=list)

    def inject(self, step: str, how: str) -> None:
        (self.faults / "fault").write_text(f"{step} {how}\n")

    def heal(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.faults / "fault").unlink()

    def hung_pids(self) -> list[int]:
        try:
            return [int(line) for line in (self.faults / "hung").read_text().split()]
        except FileNotFoundError:
            return []

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
    wrapper = faults / "runc"
    runc = shutil.which("runc") or "/usr/sbin/runc"
    wrapper.write_text(_WRAPPER.replace("@DIR@", str(faults)).replace("@RUNC@", runc))
    wrapper.chmod(0o755)
    seed_busybox_image(work / "pycrio" / "root", work)
    cni = write_cni_conf(work / "net.d", work / "ipam", name="pctest-rtfaults", bridge="pcrtf0",
                         subnet="10.87.231.0/24")  # fmt: skip
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
        ],
    ).start()
    env = Env(daemon, daemon.client, work, faults)
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
        for pid in env.hung_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        left_cgroups = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not left_runc, f"runc containers left: {left_runc}"
        assert not left_cgroups, f"cgroups left: {left_cgroups}"


@pytest.fixture
def pod(env: Env) -> Iterator[Pod]:
    env.heal()
    (env.faults / "hung").unlink(missing_ok=True)
    yield env.pod()
    env.heal()


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
    env.inject("create", "hang")
    with pytest.raises(grpc.RpcError) as caught:
        env.create(pod_id, config, "c-hang")
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED, caught.value.details()
    assert env.hung_pids(), "the wrapper never ran"
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
    expected = grpc.StatusCode.DEADLINE_EXCEEDED if how == "hang" else grpc.StatusCode.INTERNAL
    assert caught.value.code() == expected, caught.value.details()
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
    expected = grpc.StatusCode.DEADLINE_EXCEEDED if how == "hang" else grpc.StatusCode.INTERNAL
    assert caught.value.code() == expected, caught.value.details()
    if how == "fail":
        assert "injected: runtime kill refused" in caught.value.details()
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
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=container_id, timeout=0))
    env.inject("delete", how)
    with pytest.raises(grpc.RpcError) as caught:
        env.remove(container_id)
    expected = grpc.StatusCode.DEADLINE_EXCEEDED if how == "hang" else grpc.StatusCode.INTERNAL
    assert caught.value.code() == expected, caught.value.details()
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
        env.client.runtime.ExecSync(pb.ExecSyncRequest(container_id=container_id, cmd=["true"], timeout=2))
    assert caught.value.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.DEADLINE_EXCEEDED)
    if how == "fail":
        assert "injected: runtime exec refused" in caught.value.details()
    _nothing_left(env)
    env.heal()
    request = pb.ExecSyncRequest(container_id=container_id, cmd=["true"], timeout=30)
    answer = env.client.runtime.ExecSync(request)
    assert answer.exit_code == 0
    assert status(env.client, container_id).status.state == pb.CONTAINER_RUNNING

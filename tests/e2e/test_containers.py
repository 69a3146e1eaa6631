"""Containers over gRPC against the real daemon, runc and conmon (mirrors cri-tools' pkg/validate
container.go, security_context_linux.go and multi_container_linux.go for what pycrio supports)."""

import contextlib
import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from domain.capabilities import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from tests.contract.container_host import TEST_CGROUP, cgroup_dirs, processes_matching, remove_cgroups
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    log_lines,
    pod_config,
    run_container,
    seed_busybox_image,
    status,
    wait_exited,
    wait_until,
    write_cni_conf,
)
from tests.e2e.daemon import Daemon
from tests.fixtures.images import PushedImages
from tests.fixtures.registry import RunningRegistry, registries_conf_text

MiB = 1024 * 1024


@dataclass
class Env:
    daemon: Daemon
    client: CriClient
    logs: Path
    work: Path
    cgroup_parent: str
    pods: list[str]

    def pod(self, name: str, **linux: object) -> tuple[str, pb.PodSandboxConfig]:
        config = pod_config(f"{name}-{uuid.uuid4().hex[:6]}", self.logs, **linux)
        pod_id = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, config


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, registry: RunningRegistry) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pctest-containers")
    root = work / "pycrio" / "root"
    seed_busybox_image(root, work)
    cni = write_cni_conf(work / "net.d", work / "ipam")
    (work / "registries.conf").write_text(registries_conf_text(registry))
    (work / "registries.conf.d").mkdir()
    parent = f"/{TEST_CGROUP}/e2e-{uuid.uuid4().hex[:6]}"
    daemon = Daemon(
        work / "pycrio",
        [
            f'network.cni_conf_dir="{cni}"',
            f'pods.default_cgroup_parent="{parent}"',
            f'runtime.runtimes.runc.root="{work / "runc"}"',
            f'image.registries_conf="{work / "registries.conf"}"',
            f'image.registries_conf_dir="{work / "registries.conf.d"}"',
        ],
    ).start()
    env = Env(daemon, daemon.client, work / "logs", work, parent, [])
    env.logs.mkdir()
    try:
        yield env
    finally:
        with contextlib.suppress(grpc.RpcError):
            for pod_id in env.pods:
                env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
                env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        daemon.stop()
        subprocess.run(["ip", "link", "del", "pcctr0"], capture_output=True, check=False)
        left = remove_cgroups(parent)
        remove_cgroups(TEST_CGROUP)
        assert not left, f"cgroups left: {left}"
        assert not _mounts_under(work), f"mounts left: {_mounts_under(work)}"


def _mounts_under(path: Path) -> list[str]:
    prefix = str(path.resolve())
    with open("/proc/self/mountinfo") as table:
        return [line.split()[4] for line in table if line.split()[4].startswith(prefix)]


@pytest.fixture(scope="module")
def shared_pod(env: Env) -> tuple[str, pb.PodSandboxConfig]:
    return env.pod("shared")


def code_of(call: object, *args: object) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value.code()


def remove(env: Env, container_id: str) -> None:
    env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=container_id))


def exec_sync(env: Env, container_id: str, cmd: list[str], timeout: int = 30) -> pb.ExecSyncResponse:
    response: pb.ExecSyncResponse = env.client.runtime.ExecSync(
        pb.ExecSyncRequest(container_id=container_id, cmd=cmd, timeout=timeout)
    )
    return response


# --- lifecycle ------------------------------------------------------------------------------------------


def test_prints_to_both_streams_and_exits_with_its_code(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    config = container_config("streams", ["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 3"])
    cid = run_container(env.client, pod_id, pod, config)
    exited = wait_exited(env.client, cid)
    assert (exited.exit_code, exited.reason) == (3, "Error")
    assert exited.created_at <= exited.started_at <= exited.finished_at
    assert exited.image_ref and exited.image.image == "docker.io/library/busybox:latest"
    assert exited.log_path == str(env.logs / "streams.log")
    assert log_lines(exited.log_path) == [("stdout", "to-stdout"), ("stderr", "to-stderr")]
    ok = run_container(env.client, pod_id, pod, container_config("zero", ["/bin/true"]))
    assert (wait_exited(env.client, ok).exit_code, wait_exited(env.client, ok).reason) == (0, "Completed")
    remove(env, cid)
    remove(env, ok)


def test_removal_leaves_no_mount_cgroup_process_or_state(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    cid = run_container(env.client, pod_id, pod, container_config("leaves", ["/bin/sleep", "7171"]))
    assert processes_matching("sleep 7171")
    assert cgroup_dirs(f"{env.cgroup_parent}/pycrio-{cid}")
    assert any(cid in m for m in _mounts_under(env.work))
    remove(env, cid)
    assert (
        code_of(env.client.runtime.ContainerStatus, pb.ContainerStatusRequest(container_id=cid))
        == grpc.StatusCode.NOT_FOUND
    )
    assert not processes_matching("sleep 7171")
    assert not processes_matching(f"-c {cid}")  # conmon
    assert not cgroup_dirs(f"{env.cgroup_parent}/pycrio-{cid}")
    assert not [m for m in _mounts_under(env.work) if cid in m]
    state = env.work / "pycrio" / "root" / "state" / "containers"
    assert not (state / f"{cid}.json").exists() and not [p for p in state.glob("*") if cid in p.name]
    assert not (env.work / "pycrio" / "run" / "containers" / cid).exists()
    remove(env, cid)  # idempotent


def test_list_containers_filters(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    other_pod, other = env.pod("other")
    a = run_container(
        env.client, pod_id, pod, container_config("list-a", ["/bin/sleep", "7272"], labels={"k": "a"})
    )
    b_config = container_config("list-b", ["/bin/true"], labels={"k": "b"})
    b = env.client.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=other_pod, config=b_config, sandbox_config=other)
    ).container_id

    def listed(**kw: Any) -> set[str]:
        response = env.client.runtime.ListContainers(
            pb.ListContainersRequest(filter=pb.ContainerFilter(**kw))
        )
        return {c.id for c in response.containers}

    assert {a, b} <= listed()
    assert listed(id=a) == {a}
    assert listed(id=a[:12]) == {a}
    assert listed(pod_sandbox_id=other_pod) == {b}
    assert listed(label_selector={"k": "a"}) == {a}
    assert a in listed(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))
    assert b in listed(state=pb.ContainerStateValue(state=pb.CONTAINER_CREATED))
    assert a not in listed(state=pb.ContainerStateValue(state=pb.CONTAINER_CREATED))
    remove(env, a)
    remove(env, b)


def test_stop_uses_sigterm_then_sigkill(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    polite_script = "trap 'exit 0' TERM; echo ready; while true; do sleep 1; done"
    polite = run_container(
        env.client, pod_id, pod, container_config("polite", ["/bin/sh", "-c", polite_script])
    )
    wait_until(lambda: log_lines(str(env.logs / "polite.log")), what="the trap to be set")
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=polite, timeout=30))
    assert wait_exited(env.client, polite).exit_code == 0
    ignores_term = "trap '' TERM; echo ready; while true; do sleep 1; done"
    stubborn = run_container(
        env.client, pod_id, pod, container_config("stubborn", ["/bin/sh", "-c", ignores_term])
    )
    wait_until(lambda: log_lines(str(env.logs / "stubborn.log")), what="the trap to be set")
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=1))
    assert wait_exited(env.client, stubborn).exit_code == 137
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=stubborn, timeout=1))  # idempotent
    remove(env, polite)
    remove(env, stubborn)


def test_oom_killed_under_a_memory_limit(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    limits = pb.LinuxContainerConfig(resources=pb.LinuxContainerResources(memory_limit_in_bytes=16 * MiB))
    cid = run_container(
        env.client, pod_id, pod, container_config("hog", ["/bin/sh", "-c", "tail /dev/zero"], linux=limits)
    )
    exited = wait_exited(env.client, cid)
    assert (exited.reason, exited.exit_code) == ("OOMKilled", 137)
    remove(env, cid)


def test_verbose_status_and_update_resources(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    limits = pb.LinuxContainerConfig(
        resources=pb.LinuxContainerResources(memory_limit_in_bytes=64 * MiB, cpu_shares=256)
    )
    cid = run_container(
        env.client, pod_id, pod, container_config("sized", ["/bin/sleep", "7474"], linux=limits)
    )
    response = status(env.client, cid, verbose=True)
    info = json.loads(response.info["info"])
    assert info["pid"] > 0 and info["runtimeSpec"]["process"]["args"] == ["/bin/sleep", "7474"]
    memory = Path("/sys/fs/cgroup/memory") / env.cgroup_parent.lstrip("/") / f"pycrio-{cid}"
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 * MiB
    bigger = pb.LinuxContainerResources(memory_limit_in_bytes=96 * MiB, cpu_shares=512)
    env.client.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(container_id=cid, linux=bigger)
    )
    assert int((memory / "memory.limit_in_bytes").read_text()) == 96 * MiB
    assert status(env.client, cid).status.resources.linux.memory_limit_in_bytes == 96 * MiB
    bad = pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=5)
    )
    assert code_of(env.client.runtime.UpdateContainerResources, bad) == grpc.StatusCode.INVALID_ARGUMENT
    assert int((memory / "memory.limit_in_bytes").read_text()) == 96 * MiB
    remove(env, cid)


# --- exec and logs --------------------------------------------------------------------------------------


def test_exec_sync_with_output_and_with_a_timeout(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    cid = run_container(env.client, pod_id, pod, container_config("execs", ["/bin/sleep", "7575"]))
    result = exec_sync(env, cid, ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 4"])
    assert (result.stdout, result.stderr, result.exit_code) == (b"hello\n", b"oops\n", 4)
    assert code_of(exec_sync, env, cid, ["/bin/sleep", "4321"], 1) == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: not processes_matching("sleep 4321"), what="the timed-out exec to be gone")
    remove(env, cid)
    assert code_of(exec_sync, env, cid, ["/bin/true"]) == grpc.StatusCode.NOT_FOUND


def test_reopen_container_log(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    script = "while true; do echo tick; sleep 1; done"
    cid = run_container(env.client, pod_id, pod, container_config("ticker", ["/bin/sh", "-c", script]))
    log = env.logs / "ticker.log"
    wait_until(lambda: log.exists() and log.stat().st_size > 0, what="the first tick")
    log.rename(env.logs / "ticker.log.1")
    env.client.runtime.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid))
    wait_until(
        lambda: log.exists() and ("stdout", "tick") in log_lines(str(log)), what="ticks in the new log"
    )
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
    stopped = pb.ReopenContainerLogRequest(container_id=cid)
    assert code_of(env.client.runtime.ReopenContainerLog, stopped) == grpc.StatusCode.FAILED_PRECONDITION
    remove(env, cid)


# --- security context -----------------------------------------------------------------------------------


def output_of(env: Env, pod: tuple[str, pb.PodSandboxConfig], name: str, script: str,
              **security: object) -> tuple[int, str]:  # fmt: skip
    pod_id, pod_cfg = pod
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(**security))  # type: ignore[arg-type]
    cid = run_container(
        env.client, pod_id, pod_cfg, container_config(name, ["/bin/sh", "-c", script], linux=linux)
    )
    exited = wait_exited(env.client, cid)
    text = "\n".join(t for _, t in log_lines(exited.log_path))
    remove(env, cid)
    return exited.exit_code, text


def test_runs_as_a_named_user_of_the_image(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    code, text = output_of(env, shared_pod, "as-app", "id", run_as_username="app")
    assert code == 0
    assert text == "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)"
    _, as_uid = output_of(env, shared_pod, "as-uid", "id -u; id -G", run_as_user=pb.Int64Value(value=1234),
                          run_as_group=pb.Int64Value(value=5678), supplemental_groups=[42])  # fmt: skip
    assert as_uid.split("\n") == ["1234", "5678 42"]


def _capabilities(text: str) -> int:
    match = re.search(r"CapEff:\s+([0-9a-f]+)", text)
    assert match, text
    return int(match.group(1), 16)


def test_capabilities_added_and_dropped(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    script = "grep CapEff /proc/self/status"
    _, default = output_of(env, shared_pod, "caps-default", script)
    assert _capabilities(default) == sum(1 << ALL_CAPABILITIES.index(c) for c in DEFAULT_CAPABILITIES)
    changed = pb.Capability(add_capabilities=["NET_ADMIN", "SYS_TIME"], drop_capabilities=["CHOWN", "KILL"])
    _, text = output_of(env, shared_pod, "caps-changed", script, capabilities=changed)
    caps = _capabilities(text)
    assert caps & (1 << 12) and caps & (1 << 25)  # NET_ADMIN, SYS_TIME
    assert not caps & (1 << 0) and not caps & (1 << 5)  # CHOWN, KILL
    _, none = output_of(
        env, shared_pod, "caps-none", script, capabilities=pb.Capability(drop_capabilities=["ALL"])
    )
    assert _capabilities(none) == 0
    bad = pb.Capability(add_capabilities=["FLY"])
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(capabilities=bad))
    pod_id, pod = shared_pod
    bad_config = container_config("caps-bad", ["/bin/true"], linux=linux)
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, sandbox_config=pod, config=bad_config)
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.CreateContainer(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "add_capabilities" in (caught.value.details() or "")
    listed = env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert not [c for c in listed if c.metadata.name == "caps-bad"]


def test_readonly_rootfs(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    code, _ = output_of(env, shared_pod, "ro", "touch /newfile", readonly_rootfs=True)
    assert code != 0
    code, _ = output_of(env, shared_pod, "rw", "touch /newfile")
    assert code == 0


def test_sysctls(env: Env) -> None:
    pod = env.pod(
        "sysctls", sysctls={"kernel.shm_rmid_forced": "1", "net.ipv4.ip_unprivileged_port_start": "77"}
    )
    _, text = output_of(
        env,
        pod,
        "sysctl",
        "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/ip_unprivileged_port_start",
    )
    assert text.split("\n") == ["1", "77"]


# --- bind mounts ----------------------------------------------------------------------------------------


@pytest.fixture
def shared_dir(env: Env) -> Iterator[Path]:
    """A host directory that is a shared mount point, so that propagation can be observed both ways."""
    path = env.work / f"shared-{uuid.uuid4().hex[:6]}"
    path.mkdir()
    subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
    subprocess.run(["mount", "--make-rshared", str(path)], check=True)
    yield path
    for point in sorted((m for m in _mounts_under(path)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def test_bind_mounts_with_each_propagation_mode(env: Env, shared_dir: Path) -> None:
    pod_id, pod = env.pod("mounts", security_context=pb.LinuxSandboxSecurityContext(privileged=True))
    (shared_dir / "hello").write_text("from the host\n")
    (shared_dir / "private").mkdir()
    (shared_dir / "slave").mkdir()
    (shared_dir / "shared").mkdir()
    mounts = [
        pb.Mount(
            container_path="/private",
            host_path=str(shared_dir),
            propagation=pb.PROPAGATION_PRIVATE,
            readonly=True,
        ),
        pb.Mount(
            container_path="/slave", host_path=str(shared_dir), propagation=pb.PROPAGATION_HOST_TO_CONTAINER
        ),
        pb.Mount(
            container_path="/shared", host_path=str(shared_dir), propagation=pb.PROPAGATION_BIDIRECTIONAL
        ),
    ]
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(privileged=True))
    cid = run_container(
        env.client,
        pod_id,
        pod,
        container_config("mounter", ["/bin/sleep", "7676"], mounts=mounts, linux=linux),
    )
    assert exec_sync(env, cid, ["cat", "/private/hello"]).stdout == b"from the host\n"
    assert exec_sync(env, cid, ["touch", "/private/x"]).exit_code != 0  # readonly
    # Host -> container: a mount made on the host after start appears under rslave and rshared, not rprivate.
    subprocess.run(["mount", "-t", "tmpfs", "pctest-h2c", str(shared_dir / "slave")], check=True)
    (shared_dir / "slave" / "marker").write_text("x")
    assert exec_sync(env, cid, ["ls", "/slave/slave"]).stdout == b"marker\n"
    assert exec_sync(env, cid, ["ls", "/private/slave"]).stdout == b""
    # Container -> host: only a bidirectional mount propagates back.
    assert exec_sync(env, cid, ["mount", "-t", "tmpfs", "pctest-c2h", "/shared/shared"]).exit_code == 0
    exec_sync(env, cid, ["touch", "/shared/shared/from-container"])
    assert (shared_dir / "shared" / "from-container").exists()
    remove(env, cid)
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))


# --- pods, TTY, restarts --------------------------------------------------------------------------------


def test_containers_of_a_pod_share_its_namespaces(env: Env) -> None:
    pod_id, pod = env.pod("multi")
    first = run_container(env.client, pod_id, pod, container_config("first", ["/bin/sleep", "7777"]))
    second = run_container(env.client, pod_id, pod, container_config("second", ["/bin/sleep", "7778"]))

    def namespaces(cid: str) -> bytes:
        script = "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts /proc/self/ns/pid; hostname"
        result: bytes = exec_sync(env, cid, ["/bin/sh", "-c", script]).stdout
        return result

    assert namespaces(first) == namespaces(second)
    assert namespaces(first).endswith(pod.hostname.encode() + b"\n")
    # PID namespace POD (the kubelet's default): each container sees the other's processes.
    assert b"7778" in exec_sync(env, first, ["ps"]).stdout
    # Stopping the pod stops its containers; removing it removes them.
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert status(env.client, first).status.state == pb.CONTAINER_EXITED
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    for cid in (first, second):
        request = pb.ContainerStatusRequest(container_id=cid)
        assert code_of(env.client.runtime.ContainerStatus, request) == grpc.StatusCode.NOT_FOUND
    assert not processes_matching("sleep 777")


def test_tty_container(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    config = container_config(
        "tty", ["/bin/sh", "-c", "test -t 1 && echo on-a-terminal"], tty=True, stdin=True
    )
    cid = run_container(env.client, pod_id, pod, config)
    exited = wait_exited(env.client, cid)
    assert exited.exit_code == 0
    assert [text.rstrip("\r") for _, text in log_lines(exited.log_path)] == ["on-a-terminal"]
    remove(env, cid)


def test_containers_survive_a_daemon_restart(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    running = run_container(env.client, pod_id, pod, container_config("keeps", ["/bin/sleep", "7979"]))
    waits = "until test -e /tmp/go; do sleep 1; done; exit 9"
    ends = run_container(
        env.client, pod_id, pod, container_config("ends-while-down", ["/bin/sh", "-c", waits])
    )
    rootfs = Path(json.loads(status(env.client, ends, verbose=True).info["info"])["rootfs"])
    env.daemon.stop()
    # While the daemon is down the second container exits; conmon records its exit.
    (rootfs / "tmp" / "go").touch()
    wait_until(lambda: not processes_matching(waits), what="the container to exit")
    env.daemon.start()
    env.client = env.daemon.client
    assert status(env.client, running).status.state == pb.CONTAINER_RUNNING
    exited = wait_exited(env.client, ends)
    assert (exited.exit_code, exited.reason) == (9, "Error")
    assert exec_sync(env, running, ["echo", "still here"]).stdout == b"still here\n"
    remove(env, running)
    remove(env, ends)


# --- images pulled through the daemon -------------------------------------------------------------------


def test_containers_from_pulled_images_and_image_in_use(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig], pushed_images: PushedImages
) -> None:
    pod_id, pod = shared_pod
    user_image = pushed_images.user.reference
    env.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=user_image)), timeout=120)
    # The image's USER (a name in its own /etc/passwd) and its Cmd-less entrypoint rules apply.
    config = container_config("pulled", ["/bin/sh", "-c", "id; test -x /bin/busybox"])
    config.image.image = user_image
    cid = run_container(env.client, pod_id, pod, config)
    exited = wait_exited(env.client, cid)
    assert exited.exit_code == 0
    assert log_lines(exited.log_path) == [
        ("stdout", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)")
    ]
    assert exited.image_id and exited.image_ref.startswith(pushed_images.user.name)
    in_use = pb.RemoveImageRequest(image=pb.ImageSpec(image=user_image))
    assert code_of(env.client.image.RemoveImage, in_use) == grpc.StatusCode.FAILED_PRECONDITION
    remove(env, cid)
    env.client.image.RemoveImage(in_use)
    missing = container_config("gone", ["/bin/true"])
    missing.image.image = user_image
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=missing, sandbox_config=pod)
    assert code_of(env.client.runtime.CreateContainer, request) == grpc.StatusCode.NOT_FOUND

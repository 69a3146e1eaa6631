"""Containers over gRPC against the real daemon, runc and conmon (mirrors cri-tools' pkg/validate
container.go, security_context_linux.go and multi_container_linux.go for what pycrio supports)."""

import concurrent.futures
import contextlib
import json
import os
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
from ports.oci_runtime import MAX_EXEC_OUTPUT
from tests.contract.container_host import (
    TEST_CGROUP,
    cgroup_dirs,
    marker,
    processes_matching,
    remove_cgroups,
    remove_test_root_if_empty,
)
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    IMAGE,
    container_config,
    force_delete_runc_containers,
    log_lines,
    pod_config,
    remove_pods,
    run_container,
    seed_busybox_image,
    status,
    user_namespace,
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
        remove_pods(env.client, env.pods)
        listed: list[pb.Container] = []
        with contextlib.suppress(grpc.RpcError):
            listed = list(env.client.runtime.ListContainers(pb.ListContainersRequest()).containers)
        daemon.stop()
        # The daemon must have left nothing; whatever it did leave is found, then cleaned, then reported.
        run = work / "pycrio" / "run"
        left_files = [p for d in ("containers", "exits", "conmon", "attach") for p in (run / d).glob("*")]
        left_runc = force_delete_runc_containers(work / "runc")
        left_mounts = _mounts_under(work)
        for point in sorted(left_mounts, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", "pcctr0"], capture_output=True, check=False)
        left = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not listed, f"containers left: {[c.metadata.name for c in listed]}"
        assert not left_runc, f"runc containers left: {left_runc}"
        assert not left_files, f"container files left: {left_files}"
        assert not left_mounts, f"mounts left: {left_mounts}"
        assert not left, f"cgroups left: {left}"


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
    assert sorted(log_lines(exited.log_path)) == [("stderr", "to-stderr"), ("stdout", "to-stdout")]
    ok = run_container(env.client, pod_id, pod, container_config("zero", ["/bin/true"]))
    assert (wait_exited(env.client, ok).exit_code, wait_exited(env.client, ok).reason) == (0, "Completed")
    remove(env, cid)
    remove(env, ok)


def test_removal_leaves_no_mount_cgroup_process_or_state(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    cid = run_container(env.client, pod_id, pod, container_config("leaves", ["/bin/sleep", marker(0)]))
    assert processes_matching(f"sleep {marker(0)}")
    assert cgroup_dirs(f"{env.cgroup_parent}/pycrio-{cid}")
    (conmon,) = processes_matching(f"-c {cid}")
    conmon_cgroup = f"{env.cgroup_parent}/pycrio-conmon-{cid}"  # out of the daemon's cgroup, like cri-o's
    dirs = cgroup_dirs(conmon_cgroup)
    assert dirs and all(str(conmon) in (d / "cgroup.procs").read_text().split() for d in dirs)
    assert any(cid in m for m in _mounts_under(env.work))
    remove(env, cid)
    assert (
        code_of(env.client.runtime.ContainerStatus, pb.ContainerStatusRequest(container_id=cid))
        == grpc.StatusCode.NOT_FOUND
    )
    assert not processes_matching(f"sleep {marker(0)}")
    assert not processes_matching(f"-c {cid}")  # conmon
    assert not cgroup_dirs(f"{env.cgroup_parent}/pycrio-{cid}")
    assert not cgroup_dirs(conmon_cgroup)
    assert not [m for m in _mounts_under(env.work) if cid in m]
    state = env.work / "pycrio" / "root" / "state" / "containers"
    assert not (state / f"{cid}.json").exists() and not [p for p in state.glob("*") if cid in p.name]
    run = env.work / "pycrio" / "run"
    assert not (run / "containers" / cid).exists()
    assert not (run / "exits" / cid).exists() and not (run / "conmon" / cid).exists()
    assert not (run / "attach" / cid).exists()
    remove(env, cid)  # idempotent


def test_list_containers_filters(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    other_pod, other = env.pod("other")
    a = run_container(
        env.client, pod_id, pod, container_config("list-a", ["/bin/sleep", marker(1)], labels={"k": "a"})
    )
    b_config = container_config("list-b", ["/bin/true"], labels={"k": "b"})
    b = env.client.runtime.CreateContainer(
        pb.CreateContainerRequest(pod_sandbox_id=other_pod, config=b_config, sandbox_config=other)
    ).container_id

    def listed(**kw: Any) -> set[str]:
        response = env.client.runtime.ListContainers(
            pb.ListContainersRequest(filter=pb.ContainerFilter(**kw))
        )
        stream = env.client.runtime.StreamContainers(
            pb.StreamContainersRequest(filter=pb.ContainerFilter(**kw))
        )
        assert [c for m in stream for c in m.containers] == list(response.containers)
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


def test_a_real_time_stop_signal_reaches_the_container(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    """SIGRTMAX-1 (the CRI's SIGRTMAXMINUS1, kernel signal 63) is what StopContainer sends, and what the
    status names (the kubelet's ContainerStopSignals reads it back)."""
    pod_id, pod = shared_pod
    script = "trap 'echo got 63; exit 5' 63; echo ready; while true; do sleep 0.2; done"
    config = container_config("realtime", ["/bin/sh", "-c", script], stop_signal=pb.SIGRTMAXMINUS1)
    cid = run_container(env.client, pod_id, pod, config)
    wait_until(lambda: log_lines(str(env.logs / "realtime.log")), what="the trap to be set")
    assert status(env.client, cid).status.stop_signal == pb.SIGRTMAXMINUS1
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=30))
    exited = wait_exited(env.client, cid)
    assert (exited.exit_code, exited.stop_signal) == (5, pb.SIGRTMAXMINUS1)
    assert log_lines(exited.log_path) == [("stdout", "ready"), ("stdout", "got 63")]
    remove(env, cid)


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
        resources=pb.LinuxContainerResources(
            memory_limit_in_bytes=64 * MiB,
            cpu_shares=256,
            cpu_period=100000,
            cpu_quota=50000,
            cpuset_cpus="0",
        )
    )
    cid = run_container(
        env.client, pod_id, pod, container_config("sized", ["/bin/sleep", marker(3)], linux=limits)
    )
    response = status(env.client, cid, verbose=True)
    info = json.loads(response.info["info"])
    assert info["pid"] > 0 and info["runtimeSpec"]["process"]["args"] == ["/bin/sleep", marker(3)]
    memory = Path("/sys/fs/cgroup/memory") / env.cgroup_parent.lstrip("/") / f"pycrio-{cid}"
    assert int((memory / "memory.limit_in_bytes").read_text()) == 64 * MiB
    relative = Path(env.cgroup_parent.lstrip("/")) / f"pycrio-{cid}"
    cpu, cpuset = Path("/sys/fs/cgroup/cpu") / relative, Path("/sys/fs/cgroup/cpuset") / relative
    assert (cpu / "cpu.shares").read_text().strip() == "256"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert (cpuset / "cpuset.cpus").read_text().strip() == "0"
    bigger = pb.LinuxContainerResources(
        memory_limit_in_bytes=96 * MiB, cpu_shares=512, cpu_period=100000, cpu_quota=80000
    )
    env.client.runtime.UpdateContainerResources(
        pb.UpdateContainerResourcesRequest(container_id=cid, linux=bigger)
    )
    assert int((memory / "memory.limit_in_bytes").read_text()) == 96 * MiB
    assert (cpu / "cpu.shares").read_text().strip() == "512"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "80000"
    assert status(env.client, cid).status.resources.linux.memory_limit_in_bytes == 96 * MiB
    bad = pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(memory_limit_in_bytes=5)
    )
    assert code_of(env.client.runtime.UpdateContainerResources, bad) == grpc.StatusCode.INVALID_ARGUMENT
    assert int((memory / "memory.limit_in_bytes").read_text()) == 96 * MiB
    # The runtime refuses a CPU this machine does not have: nothing of the update stays.
    refused = pb.UpdateContainerResourcesRequest(
        container_id=cid,
        linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=128 * MiB, cpu_shares=1024, cpuset_cpus="4095"
        ),
    )
    assert code_of(env.client.runtime.UpdateContainerResources, refused) == grpc.StatusCode.INTERNAL
    assert int((memory / "memory.limit_in_bytes").read_text()) == 96 * MiB
    assert (cpu / "cpu.shares").read_text().strip() == "512"
    assert (cpuset / "cpuset.cpus").read_text().strip() == "0"
    assert status(env.client, cid).status.resources.linux.memory_limit_in_bytes == 96 * MiB
    remove(env, cid)


# --- exec and logs --------------------------------------------------------------------------------------


def test_exec_sync_with_output_and_with_a_timeout(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    cid = run_container(env.client, pod_id, pod, container_config("execs", ["/bin/sleep", marker(4)]))
    result = exec_sync(env, cid, ["/bin/sh", "-c", "echo hello; echo oops >&2; exit 4"])
    assert (result.stdout, result.stderr, result.exit_code) == (b"hello\n", b"oops\n", 4)
    assert code_of(exec_sync, env, cid, ["/bin/sleep", marker(5)], 1) == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: not processes_matching(f"sleep {marker(5)}"), what="the timed-out exec to be gone")
    remove(env, cid)
    assert code_of(exec_sync, env, cid, ["/bin/true"]) == grpc.StatusCode.NOT_FOUND


def test_exec_sync_output_is_byte_exact_and_cut_below_the_message_limit(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    cid = run_container(env.client, pod_id, pod, container_config("exec-bytes", ["/bin/sleep", marker(6)]))
    assert exec_sync(env, cid, ["/bin/sh", "-c", r"printf 'a\rb\nc\n'"]).stdout == b"a\rb\nc\n"
    # Output past the cap comes back cut, as cri-o returns it: at the cap, lines or not.
    flood = exec_sync(env, cid, ["/bin/sh", "-c", f"head -c {20 * MiB} /dev/zero | tr '\\0' x"])
    assert (flood.exit_code, flood.stdout, flood.stderr) == (0, b"x" * MAX_EXEC_OUTPUT, b"")
    lines = exec_sync(env, cid, ["/bin/sh", "-c", f"yes 0123456789abcdef | head -c {20 * MiB}"])
    assert lines.exit_code == 0 and len(lines.stdout) == MAX_EXEC_OUTPUT
    assert lines.stdout.startswith(b"0123456789abcdef\n" * 1000)
    remove(env, cid)


def test_remove_pre_empts_a_stop_with_an_endless_grace_period(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    # Takes SIGTERM and goes on; says so once the trap is set, since a SIGTERM before it would kill it.
    script = "trap 'echo got-term' TERM; echo trap-set; while true; do sleep 1; done"
    cid = run_container(env.client, pod_id, pod, container_config("stubborn", ["/bin/sh", "-c", script]))
    log = env.logs / "stubborn.log"
    wait_until(lambda: log.exists() and b"trap-set" in log.read_bytes(), what="the TERM trap to be set")
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        stopping = pool.submit(
            env.client.runtime.StopContainer,
            pb.StopContainerRequest(container_id=cid, timeout=2**62),
            timeout=120,
        )
        wait_until(lambda: log.exists() and b"got-term" in log.read_bytes(), what="SIGTERM to arrive")
        # Stop is now waiting out its grace period; RemoveContainer must not queue behind it.
        env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=60)
        stopping.result()
    assert code_of(status, env.client, cid) == grpc.StatusCode.NOT_FOUND


def test_exec_sync_with_an_endless_timeout_runs(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    cid = run_container(env.client, pod_id, pod, container_config("exec-long", ["/bin/sleep", marker(7)]))
    result = exec_sync(env, cid, ["/bin/echo", "hi"], timeout=2**62)
    assert (result.exit_code, result.stdout) == (0, b"hi\n")
    remove(env, cid)


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
        container_config("mounter", ["/bin/sleep", marker(6)], mounts=mounts, linux=linux),
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
    first = run_container(env.client, pod_id, pod, container_config("first", ["/bin/sleep", marker(7)]))
    second = run_container(env.client, pod_id, pod, container_config("second", ["/bin/sleep", marker(8)]))

    def namespaces(cid: str) -> bytes:
        script = "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts /proc/self/ns/pid; hostname"
        result: bytes = exec_sync(env, cid, ["/bin/sh", "-c", script]).stdout
        return result

    assert namespaces(first) == namespaces(second)
    assert namespaces(first).endswith(pod.hostname.encode() + b"\n")
    # PID namespace POD (the kubelet's default): each container sees the other's processes.
    assert marker(8).encode() in exec_sync(env, first, ["ps"]).stdout
    # Stopping the pod stops its containers; removing it removes them.
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    assert status(env.client, first).status.state == pb.CONTAINER_EXITED
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
    for cid in (first, second):
        request = pb.ContainerStatusRequest(container_id=cid)
        assert code_of(env.client.runtime.ContainerStatus, request) == grpc.StatusCode.NOT_FOUND
    assert not processes_matching(f"sleep {marker(7)}") and not processes_matching(f"sleep {marker(8)}")


def test_a_container_that_dies_on_its_own_lists_exited_in_the_very_next_list(env: Env) -> None:
    """Lists answer from kept bytes while nothing changed (adapters/cri/list_answers.py): an exit that no RPC
    caused must show as soon as conmon has recorded it."""
    pod_id, pod = env.pod("dies")
    cid = run_container(env.client, pod_id, pod, container_config("dies", ["/bin/sleep", "3600"]))
    running = pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))

    def listed(wanted: pb.ContainerFilter) -> list[tuple[str, int]]:
        reply = env.client.runtime.ListContainers(pb.ListContainersRequest(filter=wanted))
        return [(c.id, c.state) for c in reply.containers]

    assert listed(pb.ContainerFilter(pod_sandbox_id=pod_id)) == [(cid, pb.CONTAINER_RUNNING)]
    assert (cid, pb.CONTAINER_RUNNING) in listed(running)
    pid = json.loads(status(env.client, cid, verbose=True).info["info"])["pid"]
    os.kill(pid, 9)
    exit_file = env.daemon.workdir / "run" / "exits" / cid
    wait_until(lambda: exit_file.exists() and exit_file.stat().st_size > 0, what="conmon's exit record")
    assert listed(pb.ContainerFilter(pod_sandbox_id=pod_id)) == [(cid, pb.CONTAINER_EXITED)]
    assert cid not in [found for found, _ in listed(running)]


def test_pod_stop_kills_its_containers_without_a_grace_period(env: Env) -> None:
    """The CRI: running containers are forcibly terminated by StopPodSandbox (no SIGTERM first)."""
    pod_id, pod = env.pod("forced")
    script = "trap 'echo got-term; exit 0' TERM; echo trap-set; while true; do sleep 1; done"
    cid = run_container(env.client, pod_id, pod, container_config("graceful", ["/bin/sh", "-c", script]))
    log = env.logs / "graceful.log"
    wait_until(lambda: log.exists() and b"trap-set" in log.read_bytes(), what="the TERM trap to be set")
    env.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
    stopped = status(env.client, cid).status
    assert stopped.state == pb.CONTAINER_EXITED
    assert stopped.exit_code == 128 + 9
    assert "got-term" not in [line for _, line in log_lines(stopped.log_path)]
    env.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))


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
    running = run_container(env.client, pod_id, pod, container_config("keeps", ["/bin/sleep", marker(10)]))
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
    # No one saw that exit happen, so no one deleted its runc state: RemoveContainer does.
    assert ends in _runc_knows(env)
    assert exec_sync(env, running, ["echo", "still here"]).stdout == b"still here\n"
    remove(env, running)
    remove(env, ends)
    assert ends not in _runc_knows(env) and running not in _runc_knows(env)


def test_status_fields_as_a_kubelet_reads_them(env: Env) -> None:
    """The kubelet names the image by the id PullImage answered and says what the pod spec named in
    user_specified_image: ContainerStatus and ListContainers answer the image by tag with the rest of that
    ImageSpec, also after a daemon restart (the record on disk keeps it). PodSandboxStatus carries the pod's
    container statuses and the time they were gathered (the evented PLEG caches them under it)."""
    pod_id, pod = env.pod("fields")
    image_id = env.client.image.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=IMAGE))).image.id
    config = container_config("fields", ["/bin/sh", "-c", "until test -e /tmp/go; do sleep 0.1; done"])
    config.image.CopyFrom(
        pb.ImageSpec(image=image_id, user_specified_image="busybox", annotations={"example.com/a": "1"})
    )
    cid = run_container(env.client, pod_id, pod, config)
    expected = pb.ImageSpec(image=IMAGE, user_specified_image="busybox", annotations={"example.com/a": "1"})
    running = status(env.client, cid).status
    assert (running.image, running.image_id) == (expected, image_id)
    assert running.image_ref == f"docker.io/library/busybox@sha256:{'0' * 64}"
    assert (running.started_at > 0, running.finished_at, running.reason) == (True, 0, "")
    (listed,) = env.client.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod_id))
    ).containers
    assert (listed.image, listed.image_id, listed.image_ref) == (expected, image_id, running.image_ref)

    before = env.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    assert before.timestamp >= running.started_at
    assert [(c.id, c.state, c.image) for c in before.containers_statuses] == [
        (cid, pb.CONTAINER_RUNNING, expected)
    ]
    env.client.runtime.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["touch", "/tmp/go"], timeout=30))
    exited = wait_exited(env.client, cid)
    after = env.client.runtime.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
    assert after.timestamp > before.timestamp
    assert [(c.id, c.state, c.reason) for c in after.containers_statuses] == [
        (cid, pb.CONTAINER_EXITED, "Completed")
    ]
    assert after.containers_statuses[0] == exited

    env.daemon.stop()
    env.daemon.start()
    env.client = env.daemon.client
    assert status(env.client, cid).status == exited
    remove(env, cid)


def _runc_knows(env: Env) -> list[str]:
    listed = subprocess.run(
        ["runc", "--root", str(env.work / "runc"), "list", "-q"], capture_output=True, text=True, check=True
    )
    return listed.stdout.split()


def test_the_runc_state_of_an_exited_container_goes_before_its_removal(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    """The exit watcher deletes it and unmounts the rootfs once the exit is noticed (as containerd's task
    delete does), so that RemoveContainer only drops records; the container stays listed, EXITED, with its
    log."""
    pod_id, pod = shared_pod
    # A PID namespace of its own (the kubelet's default): the stop kills its init alone, and the child
    # goes with it.
    own_pids = pb.LinuxContainerConfig(
        security_context=pb.LinuxContainerSecurityContext(
            namespace_options=pb.NamespaceOption(pid=pb.CONTAINER)
        )
    )
    command = ["/bin/sh", "-c", f"sleep {marker(11)} & exec sleep {marker(12)}"]
    stopped = run_container(env.client, pod_id, pod, container_config("stopped", command, linux=own_pids))
    wait_until(lambda: processes_matching(f"sleep {marker(11)}"), what="the child to start")
    ends = run_container(env.client, pod_id, pod, container_config("ends", ["/bin/sh", "-c", "echo bye"]))
    env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=stopped, timeout=0))
    assert wait_exited(env.client, ends).exit_code == 0
    wait_until(lambda: not {stopped, ends} & set(_runc_knows(env)), what="the runc state to be deleted")
    assert not cgroup_dirs(f"{env.cgroup_parent}/pycrio-{stopped}")
    wait_until(lambda: not [m for m in _mounts_under(env.work) if stopped in m], what="the rootfs unmounted")
    assert not processes_matching(f"sleep {marker(11)}") and not processes_matching(f"sleep {marker(12)}")
    assert status(env.client, stopped).status.exit_code == 137
    assert log_lines(status(env.client, ends).status.log_path) == [("stdout", "bye")]
    remove(env, stopped)
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


def test_image_volumes_are_read_only_executable_and_go_with_the_container(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    image = pb.ImageSpec(image=IMAGE, user_specified_image="busybox")
    script = (
        "test -f /vol/bin/busybox && /vol/bin/busybox true && test -f /volbin/busybox"
        " && test ! -e /volbin/bin && ! touch /vol/written 2>/dev/null && echo volumes-ok"
    )
    config = container_config(
        "image-volume",
        ["/bin/sh", "-c", script],
        mounts=[
            pb.Mount(container_path="/vol", readonly=True, image=image),
            pb.Mount(container_path="/volbin", readonly=True, image=image, image_sub_path="bin"),
        ],
    )
    cid = run_container(env.client, pod_id, pod, config)
    exited = wait_exited(env.client, cid)
    assert log_lines(exited.log_path) == [("stdout", "volumes-ok")], exited
    image_id = env.client.image.ImageStatus(pb.ImageStatusRequest(image=image)).image.id
    assert [(m.container_path, m.image.image_ref, m.image.user_specified_image) for m in exited.mounts] == [
        ("/vol", image_id, "busybox"),
        ("/volbin", image_id, "busybox"),
    ]
    assert [m for m in _mounts_under(env.work) if "image-volume" in m]
    remove(env, cid)
    assert not [m for m in _mounts_under(env.work) if "image-volume" in m]
    writable = container_config(
        "image-volume-rw", ["/bin/true"], mounts=[pb.Mount(container_path="/vol", image=image)]
    )
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=writable, sandbox_config=pod)
    assert code_of(env.client.runtime.CreateContainer, request) == grpc.StatusCode.INVALID_ARGUMENT


def test_supplemental_groups_policy_merge_and_strict(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig], pushed_images: PushedImages
) -> None:
    assert env.client.runtime.Status(pb.StatusRequest()).features.supplemental_groups_policy
    pod_id, pod = shared_pod
    user_image = pushed_images.user.reference
    env.client.image.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image=user_image)), timeout=120)
    groups = {}
    for name, policy in (("merge", pb.Merge), ("strict", pb.Strict)):
        security = pb.LinuxContainerSecurityContext(
            run_as_user=pb.Int64Value(value=1000),
            supplemental_groups=[1234],
            supplemental_groups_policy=policy,
        )
        config = container_config(
            f"groups-{name}",
            ["/bin/sh", "-c", "id -G"],
            linux=pb.LinuxContainerConfig(security_context=security),
        )
        config.image.image = user_image
        cid = run_container(env.client, pod_id, pod, config)
        exited = wait_exited(env.client, cid)
        groups[name] = (
            set(log_lines(exited.log_path)[0][1].split()),
            set(exited.user.linux.supplemental_groups),
        )
        remove(env, cid)
    # The image's /etc/group makes its user `app` (1000) a member of `extra` (2000): Merge only.
    assert groups["merge"] == ({"1000", "1234", "2000"}, {1000, 1234, 2000})
    assert groups["strict"] == ({"1000", "1234"}, {1000, 1234})


def test_seccomp_profiles(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    script = "grep Seccomp: /proc/self/status; mkdir /made-here && echo made"
    default = pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)
    _, text = output_of(env, shared_pod, "seccomp-default", script, seccomp=default)
    assert text.split("\n") == ["Seccomp:\t2", "made"]
    unconfined = pb.SecurityProfile(profile_type=pb.SecurityProfile.Unconfined)
    _, text = output_of(env, shared_pod, "seccomp-unconfined", script, seccomp=unconfined)
    assert text.split("\n") == ["Seccomp:\t0", "made"]
    profile = env.work / "deny-mkdir.json"
    profile.write_text(
        json.dumps(
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
            }
        )
    )
    localhost = pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref=str(profile))
    code, text = output_of(env, shared_pod, "seccomp-localhost", script, seccomp=localhost)
    assert code != 0
    assert text.split("\n") == [
        "Seccomp:\t2",
        "mkdir: can't create directory '/made-here': Operation not permitted",
    ]


def test_a_fifo_as_seccomp_profile_is_refused_at_once(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    fifo = env.work / "profile.fifo"
    os.mkfifo(fifo)  # an open() for reading would wait for a writer forever
    localhost = pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref=str(fifo))
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(seccomp=localhost))
    request = pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=container_config("seccomp-fifo", ["/bin/true"], linux=linux),
        sandbox_config=pod,
    )  # fmt: skip
    with pytest.raises(grpc.RpcError) as refused:
        env.client.runtime.CreateContainer(request, timeout=60)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "seccomp.localhost_ref" in (refused.value.details() or "")
    assert "not a regular file" in (refused.value.details() or "")


def test_no_new_privs_masked_and_readonly_paths(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    script = (
        "grep NoNewPrivs: /proc/self/status; "
        "test -s /proc/kcore && echo kcore-visible; "
        "echo 1 > /proc/sys/kernel/domainname && echo proc-sys-writable; echo done"
    )
    pod_id, pod = shared_pod
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(no_new_privs=True))
    cid = run_container(
        env.client, pod_id, pod, container_config("nnp", ["/bin/sh", "-c", script], linux=linux)
    )
    lines = log_lines(wait_exited(env.client, cid).log_path)
    remove(env, cid)
    # The two streams reach the log through two pipes: compare each stream on its own.
    assert [t for s, t in lines if s == "stdout"] == ["NoNewPrivs:\t1", "done"]
    assert [t for s, t in lines if s == "stderr"] == [
        "/bin/sh: can't create /proc/sys/kernel/domainname: Read-only file system"
    ]


def test_privileged_container_gets_what_the_daemon_holds(env: Env) -> None:
    pod = env.pod("privileged", security_context=pb.LinuxSandboxSecurityContext(privileged=True))
    script = "grep CapEff /proc/self/status; echo 1 > /proc/sys/kernel/domainname && echo proc-sys-writable"
    code, text = output_of(env, pod, "privileged", script, privileged=True)
    daemon_bounding = int(
        next(
            line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("CapBnd")
        ).split()[1],
        16,
    )
    assert code == 0
    assert _capabilities(text) == daemon_bounding
    assert text.endswith("proc-sys-writable")
    shared_pod_id, shared = env.pod("not-privileged")
    linux = pb.LinuxContainerConfig(security_context=pb.LinuxContainerSecurityContext(privileged=True))
    request = pb.CreateContainerRequest(
        pod_sandbox_id=shared_pod_id,
        sandbox_config=shared,
        config=container_config("wants-privileges", ["/bin/true"], linux=linux),
    )
    assert code_of(env.client.runtime.CreateContainer, request) == grpc.StatusCode.INVALID_ARGUMENT


def test_devices_and_symlinked_host_paths(env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]) -> None:
    pod_id, pod = shared_pod
    data = env.work / "real-data"
    data.mkdir(exist_ok=True)
    (data / "file").write_text("through a link\n")
    link = env.work / "link-to-data"
    if not link.exists():
        link.symlink_to(data)
    config = container_config(
        "devices",
        ["/bin/sh", "-c", "test -c /dev/mynull && echo is-a-char-device; cat /data/file"],
        devices=[pb.Device(container_path="/dev/mynull", host_path="/dev/null", permissions="rwm")],
        mounts=[pb.Mount(container_path="/data", host_path=str(link), readonly=True)],
    )
    cid = run_container(env.client, pod_id, pod, config)
    exited = wait_exited(env.client, cid)
    assert [t for _, t in log_lines(exited.log_path)] == ["is-a-char-device", "through a link"]
    remove(env, cid)
    missing = container_config(
        "no-such-path",
        ["/bin/true"],
        mounts=[pb.Mount(container_path="/x", host_path=str(env.work / "nope"))],
    )
    request = pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=missing, sandbox_config=pod)
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.CreateContainer(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "mounts[0].host_path" in (caught.value.details() or "")


def test_recursive_read_only_mounts(env: Env, shared_dir: Path) -> None:
    handlers = {h.name: h.features for h in env.client.runtime.Status(pb.StatusRequest()).runtime_handlers}
    assert handlers["runc"].recursive_read_only_mounts  # so a kubelet sends them
    pod_id, pod = env.pod("rro")
    (shared_dir / "sub").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "pctest-sub", str(shared_dir / "sub")], check=True)
    mounts = [
        pb.Mount(container_path="/ro", host_path=str(shared_dir), readonly=True),
        pb.Mount(container_path="/rro", host_path=str(shared_dir), readonly=True, recursive_read_only=True),
    ]
    cid = run_container(
        env.client, pod_id, pod, container_config("rro", ["/bin/sleep", marker(9)], mounts=mounts)
    )
    # A plain read-only bind leaves the submount writable; a recursive one does not.
    assert exec_sync(env, cid, ["touch", "/ro/sub/plain"]).exit_code == 0
    assert exec_sync(env, cid, ["touch", "/rro/sub/recursive"]).exit_code != 0
    assert exec_sync(env, cid, ["touch", "/rro/top"]).exit_code != 0
    remove(env, cid)


def test_user_namespaced_pods_are_refused_with_the_runtime_s_reason(env: Env) -> None:
    # runc 1.1 on this host cannot idmap mounts (docs/containers.md); tests/vm runs them under crun.
    handlers = {h.name: h.features for h in env.client.runtime.Status(pb.StatusRequest()).runtime_handlers}
    assert not handlers["runc"].user_namespaces  # so a kubelet never sends them
    config = pod_config(
        f"userns-{uuid.uuid4().hex[:6]}",
        env.logs,
        security_context=pb.LinuxSandboxSecurityContext(namespace_options=user_namespace(196608)),
    )
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = caught.value.details() or ""
    assert "userns_options: runtime handler 'runc' cannot run pods in a user namespace" in details
    assert "no idmap/ridmap mount option" in details
    listed = env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
    assert config.metadata.name not in {p.metadata.name for p in listed}


def test_oom_score_adj_below_the_daemon_s_own_is_clamped(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    daemon = Path(f"/proc/{env.daemon.process.pid}")  # type: ignore[union-attr]
    daemon_score = int((daemon / "oom_score_adj").read_text())
    effective = next(
        line for line in (daemon / "status").read_text().splitlines() if line.startswith("CapEff")
    )
    may_lower = bool(int(effective.split()[1], 16) & (1 << ALL_CAPABILITIES.index("CAP_SYS_RESOURCE")))
    for asked, expected in ((-998, -998 if may_lower else max(-998, daemon_score)), (500, 500)):
        resources = pb.LinuxContainerResources(oom_score_adj=asked)
        config = container_config(
            f"oom-{asked + 1000}",
            ["cat", "/proc/self/oom_score_adj"],
            linux=pb.LinuxContainerConfig(resources=resources),
        )
        cid = run_container(env.client, pod_id, pod, config)
        exited = wait_exited(env.client, cid)
        assert exited.exit_code == 0
        assert log_lines(exited.log_path) == [("stdout", str(expected))]
        remove(env, cid)


# --- kubelet behaviour: retries and parallel calls ------------------------------------------------------


def test_a_create_retried_after_the_kubelet_timed_out_gets_one_container(
    env: Env, shared_pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    pod_id, pod = shared_pod
    request = pb.CreateContainerRequest(
        pod_sandbox_id=pod_id, config=container_config("retried", ["/bin/true"]), sandbox_config=pod
    )
    with pytest.raises(grpc.RpcError) as caught:
        env.client.runtime.CreateContainer(request, timeout=0.001)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    container_id = env.client.runtime.CreateContainer(request).container_id
    named = [
        c.id
        for c in env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
        if c.metadata.name == "retried"
    ]
    assert named == [container_id]
    remove(env, container_id)


def test_parallel_containers_in_one_pod(env: Env) -> None:
    pod_id, pod = env.pod("parallel")

    def lifecycle(index: int) -> tuple[int, str]:
        config = container_config(f"p{index}", ["/bin/sh", "-c", f"echo {index}; exit {index}"])
        cid = run_container(env.client, pod_id, pod, config)
        exited = wait_exited(env.client, cid)
        lines = log_lines(exited.log_path)
        remove(env, cid)
        return exited.exit_code, lines[0][1]

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lifecycle, range(10)))
    assert results == [(i, str(i)) for i in range(10)]
    remaining = env.client.runtime.ListContainers(
        pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod_id))
    ).containers
    assert list(remaining) == []

"""Hostile requests against the real daemon, runc and conmon (issue: escapes, isolation, clear errors).

Each request is one a compromised client could send: symlinked log files and directories, mounts over the
container's root, PID namespaces of other pods, CNI argument injection, NUL bytes, huge values, ambiguous ids,
clients that give up. Each is refused with INVALID_ARGUMENT (or the CRI's code) naming the field, and
nothing outside the daemon's directories is created, written or left behind.

The daemon has a private CNI bridge (`pcesc0`, 10.93.0.0/24) and cgroups under `pycrio-test-containers/`.
"""

import stat
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.contract.container_host import remove_cgroups, remove_test_root_if_empty
from tests.cri_client import CriClient
from tests.e2e.containers_support import (
    container_config,
    pod_config,
    remove_pods,
    run_container,
    start_private_daemon,
    wait_until,
)
from tests.e2e.daemon import Daemon

HOST_NETWORK = {
    "security_context": pb.LinuxSandboxSecurityContext(namespace_options=pb.NamespaceOption(network=pb.NODE))
}


@dataclass
class Env:
    daemon: Daemon
    client: CriClient
    work: Path
    logs: Path
    ipam: Path
    pods: list[str] = field(default_factory=list)

    def pod(
        self, name: str, log_dir: Path | None = None, cni: bool = False
    ) -> tuple[str, pb.PodSandboxConfig]:
        """A host-network pod (no CNI: fast) unless `cni`."""
        config = pod_config(
            f"{name}-{uuid.uuid4().hex[:6]}", log_dir or self.logs, **({} if cni else HOST_NETWORK)
        )
        pod_id = self.client.runtime.RunPodSandbox(pb.RunPodSandboxRequest(config=config)).pod_sandbox_id
        self.pods.append(pod_id)
        return pod_id, config

    def create(self, pod: tuple[str, pb.PodSandboxConfig], config: pb.ContainerConfig) -> str:
        request = pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])
        return str(self.client.runtime.CreateContainer(request).container_id)

    def remove_pod(self, pod_id: str) -> None:
        self.client.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        self.client.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        self.pods.remove(pod_id)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    work = tmp_path_factory.mktemp("pctest-hostile")
    daemon, parent = start_private_daemon(work, "hostile", bridge="pcesc0", subnet="10.93.0.0/24")
    env = Env(daemon, daemon.client, work, work / "logs", work / "ipam")
    env.logs.mkdir()
    try:
        yield env
    finally:
        remove_pods(env.client, env.pods)
        listed = list(env.client.runtime.ListContainers(pb.ListContainersRequest()).containers)
        pods = list(env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items)
        daemon.stop()
        subprocess.run(["ip", "link", "del", "pcesc0"], capture_output=True, check=False)
        left_cgroups = remove_cgroups(parent)
        remove_test_root_if_empty()
        assert not listed, f"containers left: {[c.metadata.name for c in listed]}"
        assert not pods, f"pods left: {[p.metadata.name for p in pods]}"
        assert not left_cgroups, f"cgroups left: {left_cgroups}"


def refused(call: Any, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request)
    error: grpc.RpcError = caught.value
    return error


def assert_invalid(call: Any, request: Any, field_text: str) -> None:
    error = refused(call, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    assert field_text in error.details()


@pytest.fixture(scope="module")
def pod(env: Env) -> tuple[str, pb.PodSandboxConfig]:
    return env.pod("hostile")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory standing for /etc: nothing may appear or change in it."""
    directory = tmp_path / "etc"
    directory.mkdir()
    (directory / "shadow").write_text("precious\n")
    return directory


def untouched(outside: Path) -> bool:
    return sorted(p.name for p in outside.iterdir()) == ["shadow"] and (
        (outside / "shadow").read_text() == "precious\n"
    )


# --- logs -----------------------------------------------------------------------------------------------


def test_a_log_file_planted_as_a_symlink_is_refused(
    env: Env, pod: tuple[str, pb.PodSandboxConfig], outside: Path
) -> None:
    (env.logs / "evil.log").symlink_to(outside / "shadow")
    (env.logs / "dangling.log").symlink_to(outside / "new-file")
    for name in ("evil", "dangling"):
        config = container_config(name, ["/bin/echo", "owned"])
        assert_invalid(env.client.runtime.CreateContainer, _create(pod, config), "symbolic link")
    assert untouched(outside)
    assert not env.client.runtime.ListContainers(pb.ListContainersRequest()).containers


def test_a_log_path_through_a_symlinked_directory_is_refused(
    env: Env, pod: tuple[str, pb.PodSandboxConfig], outside: Path
) -> None:
    (env.logs / "sub").symlink_to(outside)
    config = container_config("through", ["/bin/echo", "owned"])
    config.log_path = "sub/0.log"
    assert_invalid(env.client.runtime.CreateContainer, _create(pod, config), "symbolic link")
    assert untouched(outside)


def test_reopen_refuses_a_symlink_where_conmon_would_write(
    env: Env, pod: tuple[str, pb.PodSandboxConfig], outside: Path
) -> None:
    cid = run_container(env.client, pod[0], pod[1], container_config("reopen", ["/bin/sleep", "1000"]))
    log = env.logs / "reopen.log"
    log.rename(env.logs / "reopen.log.1")  # the kubelet's rotation
    (env.logs / "reopen.log.tmp").symlink_to(outside / "shadow")  # conmon opens <log>.tmp with O_TRUNC
    request = pb.ReopenContainerLogRequest(container_id=cid)
    assert_invalid(env.client.runtime.ReopenContainerLog, request, "symbolic link")
    assert untouched(outside)
    (env.logs / "reopen.log.tmp").unlink()
    env.client.runtime.ReopenContainerLog(request)
    assert stat.S_ISREG(log.lstat().st_mode)
    env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def test_a_missing_log_directory_is_made_and_removed_with_the_pod(env: Env) -> None:
    top = env.work / "made-by-pycrio"
    pod_id, config = env.pod("madelogs", top / "pods" / "ns_name_uid")
    assert stat.S_IMODE((top / "pods" / "ns_name_uid").stat().st_mode) == 0o700
    cid = run_container(env.client, pod_id, config, container_config("writes", ["/bin/echo", "hi"]))
    wait_until(lambda: (top / "pods" / "ns_name_uid" / "writes.log").exists(), what="the log")
    env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))
    env.remove_pod(pod_id)
    assert not top.exists()

    kubelets = env.work / "kubelets-own"
    kubelets.mkdir()
    pod_id, _ = env.pod("ownlogs", kubelets)
    env.remove_pod(pod_id)
    assert kubelets.is_dir()  # not pycrio's to remove


@pytest.mark.parametrize("where", ["/proc/sys/pycrio-test", "below a file", "through a symlink", "nul"])
def test_log_directories_that_cannot_hold_logs_are_refused(env: Env, outside: Path, where: str) -> None:
    if where == "below a file":
        (env.work / "a-file").write_text("")
        log_directory = str(env.work / "a-file" / "pod")
    elif where == "through a symlink":
        link = env.work / f"link-{uuid.uuid4().hex[:6]}"
        link.symlink_to(outside)
        log_directory = str(link / "pod")
    elif where == "nul":
        log_directory = str(env.work / "nul\0pod")
    else:
        log_directory = where
    config = pod_config(f"badlogs-{uuid.uuid4().hex[:6]}", env.logs, **HOST_NETWORK)
    config.log_directory = log_directory
    assert_invalid(env.client.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=config), "log_directory")
    assert untouched(outside)
    names = [p.metadata.name for p in env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items]
    assert config.metadata.name not in names
    assert not Path("/proc/sys/pycrio-test").exists()


# --- mounts, namespaces, secrets ------------------------------------------------------------------------


@pytest.mark.parametrize("container_path", ["/", "/proc", "/proc/sys"])
def test_a_mount_over_root_or_proc_is_refused_and_the_host_dir_stays_empty(
    env: Env, pod: tuple[str, pb.PodSandboxConfig], tmp_path: Path, container_path: str
) -> None:
    host = tmp_path / "host-dir"
    host.mkdir()
    config = container_config("rootmount", ["/bin/true"])
    config.mounts.append(pb.Mount(container_path=container_path, host_path=str(host)))
    assert_invalid(env.client.runtime.CreateContainer, _create(pod, config), "mounts[0].container_path")
    assert list(host.iterdir()) == []


def test_a_failed_create_leaves_no_mount_point_in_the_host_directories(
    env: Env, pod: tuple[str, pb.PodSandboxConfig], tmp_path: Path
) -> None:
    outer, inner = tmp_path / "outer", tmp_path / "inner"
    outer.mkdir()
    inner.mkdir()
    config = container_config("nested", ["/bin/true"])
    config.mounts.append(pb.Mount(container_path="/data", host_path=str(outer)))
    config.mounts.append(pb.Mount(container_path="/data/sub/x", host_path=str(inner)))
    config.working_dir = "/etc/passwd"  # runc fails in the container's init, after the mounts
    error = refused(env.client.runtime.CreateContainer, _create(pod, config))
    assert error.code() != grpc.StatusCode.OK
    assert list(outer.iterdir()) == [] and list(inner.iterdir()) == []
    assert not env.client.runtime.ListContainers(pb.ListContainersRequest()).containers


def test_a_pid_namespace_target_in_another_pod_is_refused(
    env: Env, pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    victim = run_container(env.client, pod[0], pod[1], container_config("victim", ["/bin/sleep", "1000"]))
    other = env.pod("spy")
    config = container_config("spy", ["/bin/ps"])
    config.linux.security_context.namespace_options.pid = pb.TARGET
    config.linux.security_context.namespace_options.target_id = victim
    assert_invalid(env.client.runtime.CreateContainer, _create(other, config), "not in this container's pod")
    env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=victim))
    env.remove_pod(other[0])


def test_specs_and_state_are_root_s_alone(env: Env, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    config = container_config("secret", ["/bin/sleep", "1000"])
    config.envs.append(pb.KeyValue(key="PASSWORD", value=b"hunter2"))
    cid = run_container(env.client, pod[0], pod[1], config)
    root, run = env.work / "pycrio" / "root", env.work / "pycrio" / "run"
    # The root is searchable, not readable, by others (as containerd's): a user-namespaced pod's runtime
    # opens its rootfs below it as the pod's root. What lies under it stays root's alone (checked below).
    assert _mode(root) == 0o711 and root.stat().st_uid == 0
    assert _mode(run) == 0o700 and run.stat().st_uid == 0
    bundle = run / "containers" / cid
    assert (bundle / "config.json").read_text().count("hunter2") == 1
    wrong = [
        f"{p}: {oct(_mode(p))}" for p in [bundle, bundle / "config.json"] if _mode(p) not in (0o700, 0o600)
    ]
    for path in (root / "state").rglob("*"):
        expected = 0o700 if path.is_dir() else 0o600
        if _mode(path) != expected or path.stat().st_uid != 0:
            wrong.append(f"{path}: {oct(_mode(path))}")
    assert wrong == []
    env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_a_pod_name_cannot_inject_cni_args(env: Env) -> None:
    config = pod_config("x;IP=10.93.0.77", env.logs)
    assert_invalid(env.client.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=config), "metadata.name")
    assert not (env.ipam / "pctest-hostile" / "10.93.0.77").exists()
    pod_id, _ = env.pod("cni", cni=True)  # a pod on the network still gets an address of the pool
    assert list((env.ipam / "pctest-hostile").glob("10.93.0.*"))
    env.remove_pod(pod_id)


# --- clear errors ---------------------------------------------------------------------------------------


def test_nul_bytes_anywhere_are_invalid_naming_the_field(
    env: Env, pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    cases: list[tuple[str, Any]] = [
        ("config.metadata.name", lambda c: setattr(c.metadata, "name", "a\0b")),
        ("config.working_dir", lambda c: setattr(c, "working_dir", "/\0tmp")),
        ("config.log_path", lambda c: setattr(c, "log_path", "a\0.log")),
        ("config.envs[0].value", lambda c: c.envs.append(pb.KeyValue(key="A", value=b"\0"))),
        ("config.devices[0].host_path", lambda c: c.devices.append(pb.Device(host_path="/dev/null\0"))),
    ]
    for field_name, change in cases:
        config = container_config("nul", ["/bin/true"])
        change(config)
        assert_invalid(env.client.runtime.CreateContainer, _create(pod, config), field_name)
    sandbox = pod_config("nul", env.logs, cgroup_parent="/pycrio\0x", **HOST_NETWORK)
    assert_invalid(env.client.runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=sandbox), "cgroup_parent")
    assert not env.client.runtime.ListContainers(pb.ListContainersRequest()).containers


def test_bad_values_are_invalid_naming_the_field(
    env: Env, pod: tuple[str, pb.PodSandboxConfig], tmp_path: Path
) -> None:
    not_utf8 = tmp_path / "profile.json"
    not_utf8.write_bytes(b'{"defaultAction": "SCMP_ACT_ALLOW"}\xff')
    cases: list[tuple[str, Any]] = [
        ("metadata.name: 1048576 characters", lambda c: setattr(c.metadata, "name", "n" * (1 << 20))),
        ("cpuset_cpus", lambda c: setattr(c.linux.resources, "cpuset_cpus", "0-99999")),
        ("cpu_quota", lambda c: setattr(c.linux.resources, "cpu_quota", 2**62)),
        ("run_as_username", lambda c: setattr(c.linux.security_context, "run_as_username", "²")),
        ("run_as_username", lambda c: setattr(c.linux.security_context, "run_as_username", "١٢")),
        ("run_as_username", lambda c: setattr(c.linux.security_context, "run_as_username", "9" * 5000)),
        ("not UTF-8", lambda c: c.linux.security_context.seccomp.CopyFrom(
            pb.SecurityProfile(profile_type=pb.SecurityProfile.Localhost, localhost_ref=str(not_utf8)))),
    ]  # fmt: skip
    for field_name, change in cases:
        config = container_config("bad", ["/bin/true"])
        change(config)
        assert_invalid(env.client.runtime.CreateContainer, _create(pod, config), field_name)
    assert not env.client.runtime.ListContainers(pb.ListContainersRequest()).containers


def test_enum_numbers_from_a_newer_kubelet_are_invalid_naming_the_field(
    env: Env, pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    """Protobuf enums are open: 99 parses. Before, RunPodSandbox ran a pod network namespace for
    `network: 99` and ListPodSandbox read `state: 99` as NOTREADY."""
    runtime = env.client.runtime
    before = {sandbox.id for sandbox in runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items}
    for mode in ("network", "pid", "ipc"):
        sandbox = pod_config("enum", env.logs)
        setattr(sandbox.linux.security_context.namespace_options, mode, 99)
        field = f"config.linux.security_context.namespace_options.{mode}"
        assert_invalid(
            runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=sandbox), f"{field}: 99 is not a"
        )
    sandbox = pod_config("enum", env.logs)
    sandbox.port_mappings.add(container_port=80, protocol=99)
    assert_invalid(
        runtime.RunPodSandbox, pb.RunPodSandboxRequest(config=sandbox), "port_mappings[0].protocol: 99"
    )
    config = container_config("enum", ["/bin/true"])
    config.mounts.add(container_path="/m", host_path=str(env.logs), propagation=99)
    assert_invalid(runtime.CreateContainer, _create(pod, config), "config.mounts[0].propagation: 99")
    state = pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=99))  # type: ignore[arg-type]
    assert_invalid(runtime.ListPodSandbox, pb.ListPodSandboxRequest(filter=state), "filter.state.state: 99")
    assert {sandbox.id for sandbox in runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items} == before
    assert not runtime.ListContainers(pb.ListContainersRequest()).containers


def test_bytes_protobuf_refuses_are_invalid_naming_the_field_and_change_nothing(
    env: Env, pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    """Before, grpcio answered these INTERNAL "Exception deserializing request!" without a handler."""
    runtime = env.client.runtime
    before = runtime.ListPodSandbox(pb.ListPodSandboxRequest())
    create = _create(pod, container_config("MARK", ["/bin/true"])).SerializeToString()
    spoilt = create.replace(b"MARK", b"\xffARK")  # the container's name, not UTF-8
    cases = [
        ("CreateContainer", spoilt, "config.metadata.name: not valid UTF-8"),
        ("CreateContainer", create[: len(create) // 2], "its length runs past the end"),
        ("RemovePodSandbox", b"\x0a\x03\xc3\x28a", "pod_sandbox_id: not valid UTF-8"),
        ("ListPodSandbox", b"\x0f", "filter: wire type 7 does not exist"),
    ]
    for method, data, reason in cases:
        error = refused(env.client.channel.unary_unary(f"/runtime.v1.RuntimeService/{method}"), data)
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method, error.details())
        assert reason in error.details(), (method, error.details())
    assert runtime.ListPodSandbox(pb.ListPodSandboxRequest()) == before
    assert not runtime.ListContainers(pb.ListContainersRequest()).containers


def test_a_binary_environment_value_reaches_the_container_as_go_runtimes_pass_it(
    env: Env, pod: tuple[str, pb.PodSandboxConfig]
) -> None:
    """A kubelet of 1.36.2 or later sends KeyValue.value as bytes (a Secret's binary data). Before, pycrio's
    string field refused such a CreateContainer with INTERNAL. Bytes that are not UTF-8 become U+FFFD in
    config.json, as Go's encoding/json makes them in containerd's and cri-o's specs."""
    config = container_config("binary-env", ["/bin/sleep", "1000"])
    config.envs.add(key="BINARY", value=b"a\xff\xfeb")
    config.envs.add(key="TEXT", value="café".encode())
    cid = run_container(env.client, pod[0], pod[1], config)
    try:
        exec_env = pb.ExecSyncRequest(container_id=cid, cmd=["/bin/sh", "-c", "env"], timeout=20)
        lines = env.client.runtime.ExecSync(exec_env).stdout.splitlines()
        assert "BINARY=a\ufffd\ufffdb".encode() in lines and "TEXT=café".encode() in lines, lines
    finally:
        env.client.runtime.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0))
        env.client.runtime.RemoveContainer(pb.RemoveContainerRequest(container_id=cid))


def test_a_10_mb_id_is_not_found_with_a_bounded_message(env: Env) -> None:
    error = refused(
        env.client.runtime.ContainerStatus, pb.ContainerStatusRequest(container_id="f" * 10_000_000)
    )
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert len(error.details()) < 2100


def test_an_ambiguous_pod_prefix_is_invalid_for_stop_and_remove(env: Env) -> None:
    made: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in made.values()):
        pod_id, _ = env.pod("prefix")
        made.setdefault(pod_id[0], []).append(pod_id)
    prefix, ids = next((p, ids) for p, ids in made.items() if len(ids) > 1)
    stop = pb.StopPodSandboxRequest(pod_sandbox_id=prefix)
    assert_invalid(env.client.runtime.StopPodSandbox, stop, "matches several pod sandboxes")
    remove = pb.RemovePodSandboxRequest(pod_sandbox_id=prefix)
    assert_invalid(env.client.runtime.RemovePodSandbox, remove, "matches several pod sandboxes")
    ready = {p.id for p in env.client.runtime.ListPodSandbox(pb.ListPodSandboxRequest()).items
             if p.state == pb.SANDBOX_READY}  # fmt: skip
    assert set(ids) <= ready
    for pod_ids in made.values():
        for pod_id in pod_ids:
            env.remove_pod(pod_id)


def test_a_create_whose_client_gave_up_leaves_nothing(env: Env, pod: tuple[str, pb.PodSandboxConfig]) -> None:
    config = container_config("abandoned", ["/bin/true"])
    config.envs.extend(pb.KeyValue(key=f"K{i}", value=b"v" * 64) for i in range(50_000))
    request = _create(pod, config)
    error = refused(lambda r: env.client.runtime.CreateContainer(r, timeout=0.5), request)
    assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: "the caller gave up" in env.daemon.log(), timeout=120, what="the create to give up")
    assert not env.client.runtime.ListContainers(pb.ListContainersRequest()).containers
    state = env.work / "pycrio" / "root" / "state" / "containers"
    assert not list(state.glob("*.json")) and not list((env.work / "pycrio" / "run" / "containers").iterdir())


def _create(pod: tuple[str, pb.PodSandboxConfig], config: pb.ContainerConfig) -> pb.CreateContainerRequest:
    return pb.CreateContainerRequest(pod_sandbox_id=pod[0], config=config, sandbox_config=pod[1])

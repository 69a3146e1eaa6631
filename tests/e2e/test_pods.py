"""Pod sandboxes through the real daemon over gRPC, with real namespaces, catatonit, CNI and cgroups.

Covers the sandbox behaviours of cri-tools' pkg/validate (pod.go, pod_linux.go, networking.go,
networking_linux.go) that need no container, and the issue's done-when: 20 pods in parallel, each with its
own IP, reaching each other over the bridge, host ports forwarding, and nothing left after removal.
"""

import json
import os
import secrets
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.cri.generated import api_pb2 as pb
from tests.e2e.containers_support import wait_until
from tests.e2e.daemon import Daemon
from tests.pod_host import (
    HostTestNetwork,
    cgroup_leftovers,
    cleanup,
    cleanup_run_dir,
    connect,
    free_port,
    host_address,
    leftovers,
    make_test_network,
    nat_rules,
    netns_mounts,
    remove_cgroups,
    serve_in_netns,
)


class PodWorld:
    def __init__(self, daemon: Daemon, network: HostTestNetwork, cgroup_parent: str) -> None:
        self.daemon = daemon
        self.network = network
        self.cgroup_parent = cgroup_parent

    @property
    def runtime(self) -> Any:
        return self.daemon.client.runtime

    @property
    def run_dir(self) -> Path:
        return self.daemon.workdir / "run"

    def config(self, name: str = "", **fields: Any) -> pb.PodSandboxConfig:
        name = name or f"pod-{secrets.token_hex(4)}"
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=f"uid-{name}", namespace="e2e-pods", attempt=0),
            labels={"io.kubernetes.pod.name": name, "suite": "pods"},
            **fields,
        )
        return config

    def run(self, config: pb.PodSandboxConfig | None = None, handler: str = "") -> str:
        reply = self.runtime.RunPodSandbox(
            pb.RunPodSandboxRequest(config=config or self.config(), runtime_handler=handler)
        )
        self.network.sandbox_ids.add(reply.pod_sandbox_id)
        return str(reply.pod_sandbox_id)

    def status(self, sandbox_id: str, verbose: bool = False) -> pb.PodSandboxStatusResponse:
        reply: pb.PodSandboxStatusResponse = self.runtime.PodSandboxStatus(
            pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=verbose)
        )
        return reply

    def info(self, sandbox_id: str) -> dict[str, Any]:
        info: dict[str, Any] = json.loads(self.status(sandbox_id, verbose=True).info["info"])
        return info

    def stop_and_remove(self, sandbox_id: str) -> None:
        self.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
        self.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))

    def listed(self, **filter_fields: Any) -> list[pb.PodSandbox]:
        """ListPodSandbox's answer, checked against StreamPodSandboxes' (the same pods, each once)."""
        reply = self.runtime.ListPodSandbox(
            pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(**filter_fields))
        )
        messages = list(
            self.runtime.StreamPodSandboxes(
                pb.StreamPodSandboxesRequest(filter=pb.PodSandboxFilter(**filter_fields))
            )
        )
        assert all(m.pod_sandboxes for m in messages)
        assert [p for m in messages for p in m.pod_sandboxes] == list(reply.items)
        return list(reply.items)

    def leftovers(self) -> list[str]:
        found = leftovers(self.network) + [f"mount {m}" for m in netns_mounts(self.run_dir)]
        found += [f"cgroup {c}" for c in cgroup_leftovers(self.cgroup_parent)]
        pods_dir = self.run_dir / "pods"
        if pods_dir.exists():
            found += [f"pod dir {p.name}" for p in pods_dir.iterdir()]
        return found

    def remove_all(self) -> None:
        for pod in self.listed():
            self.stop_and_remove(pod.id)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodWorld]:
    root = tmp_path_factory.mktemp("pods-e2e")
    network = make_test_network(root)
    cgroup_parent = f"/pycrio-test-pods/e2e-{secrets.token_hex(4)}"
    daemon = Daemon(
        root / "pycrio",
        [
            f'network.cni_conf_dir="{network.conf_dir}"',
            f'pods.default_cgroup_parent="{cgroup_parent}"',
            "pods.network_teardown_timeout=10.0",
        ],
    ).start()
    created = PodWorld(daemon, network, cgroup_parent)
    try:
        yield created
    finally:
        try:
            created.remove_all()
        finally:
            daemon.stop()
            cleanup_run_dir(daemon.workdir / "run")
            cleanup(network)
            remove_cgroups(cgroup_parent)


@pytest.fixture
def pods(world: PodWorld) -> Iterator[PodWorld]:
    """Each test starts and must end with no pod and nothing of one on the host."""
    yield world
    world.remove_all()
    assert world.leftovers() == []


# ---- pod.go: basic operations -------------------------------------------------------------------------


def test_run_list_stop_remove(pods: PodWorld) -> None:
    sandbox_id = pods.run()
    assert pods.status(sandbox_id).status.state == pb.SANDBOX_READY
    assert [p.id for p in pods.listed(id=sandbox_id)] == [sandbox_id]
    pods.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert pods.status(sandbox_id).status.state == pb.SANDBOX_NOTREADY
    pods.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    assert pods.listed(id=sandbox_id) == []
    with pytest.raises(grpc.RpcError) as err:
        pods.status(sandbox_id)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_attributes_are_preserved(pods: PodWorld) -> None:
    config = pods.config("with-attributes", annotations={"abc": "def"})
    sandbox_id = pods.run(config)
    status = pods.status(sandbox_id).status
    assert status.metadata == config.metadata
    assert dict(status.labels) == dict(config.labels)
    assert dict(status.annotations) == {"abc": "def"}
    assert status.created_at > 0
    assert status.linux.namespaces.options.network == pb.POD
    (listed,) = pods.listed(id=sandbox_id)
    assert listed.metadata == config.metadata
    assert dict(listed.annotations) == {"abc": "def"}


def test_stop_and_remove_are_idempotent_and_absent_pods_are_fine(pods: PodWorld) -> None:
    sandbox_id = pods.run()
    for _ in range(2):
        pods.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox_id))
    for _ in range(2):
        pods.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id))
    pods.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id="f" * 64))
    pods.runtime.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id="f" * 64))


def test_list_filters(pods: PodWorld) -> None:
    a = pods.run(pods.config("filter-a"))
    b = pods.run(pods.config("filter-b"))
    pods.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=b))
    assert [p.id for p in pods.listed(id=a[:13])] == [a]
    ready = pods.listed(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))
    assert [p.id for p in ready] == [a]
    not_ready = pods.listed(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY))
    assert [p.id for p in not_ready] == [b]
    assert [p.id for p in pods.listed(label_selector={"io.kubernetes.pod.name": "filter-b"})] == [b]
    assert pods.listed(label_selector={"suite": "other"}) == []


def test_same_metadata_twice_is_already_exists(pods: PodWorld) -> None:
    config = pods.config("twice")
    first = pods.run(config)
    with pytest.raises(grpc.RpcError) as err:
        pods.run(config)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert first in (err.value.details() or "")


# ---- bad input ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_fields", "code", "needle"),
    [
        ({"config": pb.PodSandboxConfig()}, grpc.StatusCode.INVALID_ARGUMENT, "metadata.name"),
        ({}, grpc.StatusCode.INVALID_ARGUMENT, "metadata.name"),
        ({"sysctls": {"kernel.panic": "1"}}, grpc.StatusCode.INVALID_ARGUMENT, "kernel.panic"),
        ({"sysctls": {"net.ipv4.pcpod_nope": "1"}}, grpc.StatusCode.INVALID_ARGUMENT, "net.ipv4.pcpod_nope"),
        (
            {"sysctls": {"net.ipv4.ip_unprivileged_port_start": "many"}},
            grpc.StatusCode.INVALID_ARGUMENT,
            "sysctl 'net.ipv4.ip_unprivileged_port_start': the kernel refused value 'many'",
        ),
        ({"handler": "no-such-handler"}, grpc.StatusCode.INVALID_ARGUMENT, "no-such-handler"),
        ({"host_net_sysctl": True}, grpc.StatusCode.INVALID_ARGUMENT, "host network"),
    ],
)
def test_bad_input_gives_a_clear_code_and_leaves_nothing(
    pods: PodWorld, request_fields: dict[str, Any], code: grpc.StatusCode, needle: str
) -> None:
    config = request_fields.get("config")
    if config is None and request_fields:
        config = pods.config()
        if "sysctls" in request_fields:
            config.linux.sysctls.update(request_fields["sysctls"])
        if request_fields.get("host_net_sysctl"):
            config.linux.sysctls["net.ipv4.ip_forward"] = "1"
            config.linux.security_context.namespace_options.network = pb.NODE
    request = pb.RunPodSandboxRequest(runtime_handler=request_fields.get("handler", ""))
    if config is not None:
        request.config.CopyFrom(config)
    with pytest.raises(grpc.RpcError) as err:
        pods.runtime.RunPodSandbox(request)
    assert err.value.code() == code
    assert needle in (err.value.details() or "")
    assert pods.listed() == []
    assert pods.leftovers() == []


def test_status_of_an_absent_pod_is_not_found(pods: PodWorld) -> None:
    with pytest.raises(grpc.RpcError) as err:
        pods.status("0" * 64)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


# ---- pod_linux.go / networking.go: sysctls, hostname, DNS, namespaces ----------------------------------


def _nsenter(flag: str, *command: str) -> str:
    return subprocess.run(
        ["nsenter", flag, *command], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_safe_and_unsafe_sysctls_are_set_in_the_pod(pods: PodWorld) -> None:
    config = pods.config()
    config.linux.sysctls.update({"kernel.shm_rmid_forced": "1", "fs.mqueue.msg_max": "100"})
    config.linux.sysctls["net.ipv4.ip_unprivileged_port_start"] = "0"
    host_before = [
        Path(f"/proc/sys/{p}").read_text() for p in ("kernel/shm_rmid_forced", "fs/mqueue/msg_max")
    ]
    info = pods.info(pods.run(config))
    ipc, net = info["namespaces"]["ipc"], info["namespaces"]["network"]
    assert _nsenter(f"--ipc={ipc}", "cat", "/proc/sys/kernel/shm_rmid_forced") == "1"
    assert _nsenter(f"--ipc={ipc}", "cat", "/proc/sys/fs/mqueue/msg_max") == "100"
    assert _nsenter(f"--net={net}", "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start") == "0"
    assert [
        Path(f"/proc/sys/{p}").read_text() for p in ("kernel/shm_rmid_forced", "fs/mqueue/msg_max")
    ] == host_before


def test_hostname_and_dns_config_files(pods: PodWorld, tmp_path: Path) -> None:
    config = pods.config(
        log_directory=str(tmp_path / "logs" / "pod"),
        hostname="test-hostname",
        dns_config=pb.DNSConfig(servers=["10.10.10.10"], searches=["google.com"], options=["ndots:8"]),
    )
    sandbox_id = pods.run(config)
    info = pods.info(sandbox_id)
    resolv = Path(info["files"]["resolvConf"]).read_text()
    for line in ("nameserver 10.10.10.10", "search google.com", "options ndots:8"):
        assert line in resolv
    assert Path(info["files"]["hostname"]).read_text() == "test-hostname\n"
    ip = pods.status(sandbox_id).status.network.ip
    assert f"{ip}\ttest-hostname" in Path(info["files"]["hosts"]).read_text()
    assert _nsenter(f"--uts={info['namespaces']['uts']}", "hostname") == "test-hostname"
    shm = subprocess.run(
        ["findmnt", "-n", "-o", "FSTYPE,SIZE", info["files"]["shm"]], capture_output=True, text=True
    ).stdout.split()
    assert shm == ["tmpfs", "64M"]
    assert (tmp_path / "logs" / "pod").is_dir()


def test_infra_process_holds_a_pid_namespace_in_the_pod_cgroup(pods: PodWorld) -> None:
    config = pods.config()
    config.linux.cgroup_parent = f"{pods.cgroup_parent}/pod-explicit"
    sandbox_id = pods.run(config)
    info = pods.info(sandbox_id)
    pid = info["pid"]
    assert info["namespaces"]["pid"] == f"/proc/{pid}/ns/pid"
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(info["namespaces"]["network"]).st_ino
    assert os.stat(f"/proc/{pid}/ns/pid").st_ino != os.stat("/proc/self/ns/pid").st_ino
    assert info["cgroupPath"] == f"{pods.cgroup_parent}/pod-explicit/pycrio-{sandbox_id}"
    procs = Path(f"/sys/fs/cgroup/memory{info['cgroupPath']}/cgroup.procs").read_text().split()
    assert procs == [str(pid)]


def test_verbose_runtime_spec_names_the_namespaces_the_infra_process_is_in(pods: PodWorld) -> None:
    """`crictl inspectp` readers find a pod's netns at `.info.runtimeSpec.linux.namespaces`, as with cri-o."""
    sandbox_id = pods.run(pods.config(hostname="spec-host"))
    info = pods.info(sandbox_id)
    spec = info["runtimeSpec"]
    paths = {ns["type"]: ns["path"] for ns in spec["linux"]["namespaces"]}
    assert sorted(paths) == ["ipc", "network", "pid", "uts"]
    for kind, proc_name in (("network", "net"), ("ipc", "ipc"), ("uts", "uts"), ("pid", "pid")):
        assert os.stat(paths[kind]).st_ino == os.stat(f"/proc/{info['pid']}/ns/{proc_name}").st_ino, kind
    assert os.stat(paths["network"]).st_ino != os.stat("/proc/self/ns/net").st_ino
    assert spec["hostname"] == "spec-host"
    assert spec["linux"]["cgroupsPath"] == info["cgroupPath"]
    assert spec["annotations"]["io.kubernetes.cri.sandbox-id"] == sandbox_id


def test_a_pod_whose_infra_is_killed_lists_notready_in_the_very_next_list(pods: PodWorld) -> None:
    """Lists answer from kept bytes while nothing changed (adapters/cri/list_answers.py): an infra death,
    which no RPC causes, must still show at once."""
    sandbox_id = pods.run()
    ready = pb.PodSandboxStateValue(state=pb.SANDBOX_READY)
    assert [(p.id, p.state) for p in pods.listed()] == [(sandbox_id, pb.SANDBOX_READY)]
    assert [p.id for p in pods.listed(state=ready)] == [sandbox_id]
    pid = pods.info(sandbox_id)["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: _dead(pid), what=f"infra process {pid} to die")
    assert [(p.id, p.state) for p in pods.listed()] == [(sandbox_id, pb.SANDBOX_NOTREADY)]
    assert pods.listed(state=ready) == []
    pods.stop_and_remove(sandbox_id)


def _dead(pid: int) -> bool:
    """Gone, or a zombie (which lists count as dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(")") + 2] == "Z"


def test_host_namespaces(pods: PodWorld) -> None:
    config = pods.config()
    options = config.linux.security_context.namespace_options
    options.network, options.pid, options.ipc = pb.NODE, pb.NODE, pb.NODE
    sandbox_id = pods.run(config)
    status = pods.status(sandbox_id).status
    assert status.network.ip == ""
    assert status.linux.namespaces.options.network == pb.NODE
    info = pods.info(sandbox_id)
    assert info["namespaces"] == {"network": "", "ipc": "", "uts": "", "pid": ""}
    assert info["runtimeSpec"]["linux"]["namespaces"] == []
    assert info["files"]["shm"] == "/dev/shm"
    assert os.stat(f"/proc/{info['pid']}/ns/net").st_ino == os.stat("/proc/self/ns/net").st_ino


def test_runtime_handler_is_reported(pods: PodWorld) -> None:
    sandbox_id = pods.run(handler="runc")
    assert pods.status(sandbox_id).status.runtime_handler == "runc"
    assert pods.info(sandbox_id)["ociRuntime"] == "runc"


# ---- networking.go: port mappings ---------------------------------------------------------------------


def test_container_port_is_reachable_on_the_pod_ip(pods: PodWorld) -> None:
    sandbox_id = pods.run(pods.config(port_mappings=[pb.PortMapping(container_port=8080)]))
    ip = pods.status(sandbox_id).status.network.ip
    server = serve_in_netns(pods.info(sandbox_id)["namespaces"]["network"], 8080, "pod-page")
    try:
        assert connect(ip, 8080) == "pod-page"
    finally:
        server.kill()
        server.wait()


def test_host_port_forwards_from_loopback_and_the_host_address(pods: PodWorld) -> None:
    host_port, loopback_only = free_port(), free_port()
    config = pods.config(
        port_mappings=[
            pb.PortMapping(container_port=80, host_port=host_port),
            pb.PortMapping(container_port=80, host_port=loopback_only, host_ip="127.0.0.1"),
        ]
    )
    sandbox_id = pods.run(config)
    server = serve_in_netns(pods.info(sandbox_id)["namespaces"]["network"], 80, "via-host-port")
    try:
        assert connect("127.0.0.1", host_port) == "via-host-port"
        assert connect(host_address(), host_port) == "via-host-port"
        assert connect("127.0.0.1", loopback_only) == "via-host-port"
    finally:
        server.kill()
        server.wait()
    pods.stop_and_remove(sandbox_id)
    assert not any(str(host_port) in rule or str(loopback_only) in rule for rule in nat_rules())


# ---- the done-when: 20 pods in parallel ---------------------------------------------------------------


def test_twenty_pods_in_parallel(pods: PodWorld) -> None:
    configs = [pods.config(f"par-{i}") for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        ids = list(pool.map(pods.run, configs))
    statuses = [pods.status(i).status for i in ids]
    assert all(s.state == pb.SANDBOX_READY for s in statuses)
    ips = [s.network.ip for s in statuses]
    assert len(set(ips)) == 20
    assert all(ip.startswith(pods.network.prefix + ".") for ip in ips)
    netns = [pods.info(i)["namespaces"]["network"] for i in ids]
    servers = [serve_in_netns(ns, 7000, f"hello-from-{n}") for n, ns in enumerate(netns)]
    try:
        # Each pod reaches the next one over the bridge, from inside its own namespace.
        for n in range(20):
            target = (n + 1) % 20
            assert connect(ips[target], 7000, netns=netns[n]) == f"hello-from-{target}"
    finally:
        for server in servers:
            server.kill()
            server.wait()
    assert pods.leftovers() != []  # the leak report sees live pods
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(pods.stop_and_remove, ids))
    assert pods.listed() == []
    assert pods.leftovers() == []


# ---- restarts -----------------------------------------------------------------------------------------


def test_a_restarted_daemon_lists_stops_and_removes_its_pods(pods: PodWorld) -> None:
    ready = pods.run(pods.config("survivor"))
    stopped = pods.run(pods.config("stopped-before"))
    pods.runtime.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=stopped))
    pods.daemon.stop(signal.SIGKILL)
    pods.daemon.start()
    states = {p.id: p.state for p in pods.listed()}
    assert states == {ready: pb.SANDBOX_READY, stopped: pb.SANDBOX_NOTREADY}
    assert pods.status(ready).status.network.ip
    pods.stop_and_remove(ready)
    pods.stop_and_remove(stopped)


# ---- the systemd cgroup driver ------------------------------------------------------------------------


@pytest.mark.skipif(Path("/run/systemd/system").is_dir(), reason="this host runs systemd: see tests/vm")
def test_systemd_driver_refuses_paths_and_needs_systemd(tmp_path: Path) -> None:
    """Without systemd the driver cannot make a slice: FAILED_PRECONDITION naming it, and nothing left.
    The slices and scopes themselves are tested on a systemd host by `make vm-test` (tests/vm)."""
    network = make_test_network(tmp_path)
    daemon = Daemon(
        tmp_path / "pycrio",
        [f'network.cni_conf_dir="{network.conf_dir}"', "runtime.cgroup_driver=systemd"],
    ).start()
    world = PodWorld(daemon, network, "/kubepods.slice/kubepods-besteffort.slice")
    try:
        config = world.config("slice-pod")
        config.linux.cgroup_parent = "kubepods-besteffort-pod123.slice"
        with pytest.raises(grpc.RpcError) as refused:
            world.run(config)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "cgroup_driver = systemd" in str(refused.value.details())
        bad = world.config("path-pod")
        bad.linux.cgroup_parent = "/kubepods/besteffort"
        with pytest.raises(grpc.RpcError) as err:
            world.run(bad)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        world.remove_all()
        assert world.leftovers() == []
    finally:
        world.remove_all()
        daemon.stop()
        cleanup_run_dir(daemon.workdir / "run")
        cleanup(network)

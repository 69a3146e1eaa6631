"""The CRI sandbox handlers: protobuf in and out, over the real service with fakes behind it."""

import json
from typing import Any

import pytest

from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import SandboxHandlers, sandbox_config
from domain.container_config import Resources
from domain.errors import InvalidArgument
from domain.id_mappings import IdMapping, UserNamespace
from domain.sandbox_model import NamespaceMode
from domain.sandboxes import SandboxService, SandboxSettings
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.clock import FakeClock
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.pod_containers import FakePodContainers
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.state_store import InMemoryStateStore


class Context:
    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        return None


def _pods() -> SandboxService:
    return SandboxService(
        InMemoryStateStore(),
        FakeNetwork(subnet6="fd00:88::/64"),
        FakeNamespaces(),
        FakeInfraProcesses(),
        FakePodFiles(),
        FakeCgroups(),
        FakePodContainers(),
        SandboxSettings(),
        FakeHugePages(),
    )


@pytest.fixture
def handlers() -> SandboxHandlers:
    return SandboxHandlers(_pods())


def _config(name: str = "web", **fields: Any) -> pb.PodSandboxConfig:
    return pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid="u1", namespace="ns", attempt=2), **fields
    )


def test_status_reports_every_ip_ipv4_first(handlers: SandboxHandlers) -> None:
    ctx: Any = Context()
    sid = handlers.RunPodSandbox(pb.RunPodSandboxRequest(config=_config()), ctx).pod_sandbox_id
    status = handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid), ctx).status
    assert status.network.ip.startswith("10.88.")
    assert [p.ip for p in status.network.additional_ips] == ["fd00:88::2"]
    assert status.metadata.attempt == 2
    assert status.state == pb.SANDBOX_READY


def test_verbose_info_is_json_with_the_paths_a_container_needs(handlers: SandboxHandlers) -> None:
    ctx: Any = Context()
    sid = handlers.RunPodSandbox(pb.RunPodSandboxRequest(config=_config()), ctx).pod_sandbox_id
    reply = handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid, verbose=True), ctx)
    info = json.loads(reply.info["info"])
    assert info["pid"] > 0
    assert set(info["namespaces"]) == {"network", "ipc", "uts", "pid"}
    assert set(info["files"]) == {"hostname", "hosts", "resolvConf", "shm"}
    assert info["network"]["phase"] == "ATTACHED"
    assert not handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid), ctx).info


def test_verbose_info_has_a_runtime_spec_naming_the_pod_namespaces(handlers: SandboxHandlers) -> None:
    """crictl inspectp users read `.info.runtimeSpec.linux.namespaces`, as cri-o and containerd fill it."""
    ctx: Any = Context()
    sid = handlers.RunPodSandbox(
        pb.RunPodSandboxRequest(config=_config(hostname="h1", annotations={"a": "b"})), ctx
    ).pod_sandbox_id
    info = json.loads(
        handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid, verbose=True), ctx).info[
            "info"
        ]
    )
    spec = info["runtimeSpec"]
    paths = {ns["type"]: ns["path"] for ns in spec["linux"]["namespaces"]}
    assert paths == {**info["namespaces"], "pid": f"/proc/{info['pid']}/ns/pid"}
    assert spec["hostname"] == "h1"
    assert spec["annotations"]["a"] == "b"
    assert spec["annotations"]["io.kubernetes.cri.sandbox-id"] == sid
    assert spec["annotations"]["io.kubernetes.cri.container-type"] == "sandbox"
    assert spec["linux"]["cgroupsPath"] == info["cgroupPath"]


def test_runtime_spec_leaves_out_the_namespaces_shared_with_the_host(handlers: SandboxHandlers) -> None:
    ctx: Any = Context()
    host = pb.NamespaceOption(network=pb.NODE, pid=pb.NODE, ipc=pb.NODE)
    config = _config(
        linux=pb.LinuxPodSandboxConfig(
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=host)
        )
    )
    sid = handlers.RunPodSandbox(pb.RunPodSandboxRequest(config=config), ctx).pod_sandbox_id
    reply = handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid, verbose=True), ctx)
    assert json.loads(reply.info["info"])["runtimeSpec"]["linux"]["namespaces"] == []


def test_config_conversion() -> None:
    config = _config(
        hostname="h",
        dns_config=pb.DNSConfig(servers=["1.1.1.1"], searches=["a"], options=["ndots:2"]),
        port_mappings=[
            pb.PortMapping(protocol=pb.UDP, container_port=53, host_port=5353, host_ip="127.0.0.1")
        ],
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent="/kubepods/pod1",
            sysctls={"net.ipv4.ip_forward": "1"},
            overhead=pb.LinuxContainerResources(cpu_shares=10),
            resources=pb.LinuxContainerResources(memory_limit_in_bytes=1 << 20),
            security_context=pb.LinuxSandboxSecurityContext(
                privileged=True,
                namespace_options=pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD),
            ),
        ),
    )
    converted = sandbox_config(config)
    assert converted.dns is not None and converted.dns.options == ["ndots:2"]
    (mapping,) = converted.port_mappings
    assert (mapping.protocol, mapping.container_port, mapping.host_port, mapping.host_ip) == (
        "udp",
        53,
        5353,
        "127.0.0.1",
    )
    options = converted.namespace_options
    assert (options.network, options.pid, options.ipc) == (
        NamespaceMode.NODE,
        NamespaceMode.CONTAINER,
        NamespaceMode.POD,
    )
    assert converted.privileged
    assert converted.overhead == Resources(cpu_shares=10)
    assert converted.resources == Resources(memory_limit_in_bytes=1 << 20)
    assert sandbox_config(_config()).dns is None


def _userns_config(userns: pb.UserNamespace) -> pb.PodSandboxConfig:
    return _config(
        linux=pb.LinuxPodSandboxConfig(
            security_context=pb.LinuxSandboxSecurityContext(
                namespace_options=pb.NamespaceOption(userns_options=userns)
            )
        )
    )


def _kubelet_mapping(host_id: int = 65536, length: int = 65536, container_id: int = 0) -> pb.IDMapping:
    return pb.IDMapping(host_id=host_id, container_id=container_id, length=length)


def test_the_kubelet_s_user_namespace_request_becomes_the_pod_s_mappings() -> None:
    mapping = _kubelet_mapping(host_id=131072)
    converted = sandbox_config(_config_with_userns(pb.POD, [mapping], [mapping])).user_namespace
    assert converted == UserNamespace(
        uids=(IdMapping(0, 131072, 65536),), gids=(IdMapping(0, 131072, 65536),)
    )
    assert sandbox_config(_config_with_userns(pb.NODE, [], [])).user_namespace is None
    assert sandbox_config(_config()).user_namespace is None


def _config_with_userns(mode: int, uids: list[pb.IDMapping], gids: list[pb.IDMapping]) -> pb.PodSandboxConfig:
    return _userns_config(pb.UserNamespace(mode=mode, uids=uids, gids=gids))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mode", "uids", "gids", "message"),
    [
        (pb.POD, [], [_kubelet_mapping()], r"userns_options\.uids: 0 mappings"),
        (pb.POD, [_kubelet_mapping()] * 2, [_kubelet_mapping()], r"uids: 2 mappings"),
        (pb.POD, [_kubelet_mapping()], [_kubelet_mapping(length=0)], r"gids\[0\]\.length: 0"),
        (pb.POD, [_kubelet_mapping(container_id=1)], [_kubelet_mapping()], r"container_id: 1, .* start at 0"),
        (
            pb.POD,
            [_kubelet_mapping(host_id=0)],
            [_kubelet_mapping()],
            r"host_id: 0 would map the host's root",
        ),
        (pb.POD, [_kubelet_mapping(host_id=2**32 - 65536)], [_kubelet_mapping()], r"runs past the last id"),
        (pb.NODE, [_kubelet_mapping()], [], r"mode NODE takes no uids/gids"),
        (pb.CONTAINER, [_kubelet_mapping()], [_kubelet_mapping()], r"mode: CONTAINER is not supported"),
        (7, [], [], r"userns_options\.mode: 7 is not a valid value"),
    ],
)
def test_bad_user_namespace_requests_are_invalid_arguments_naming_the_field(
    mode: int, uids: list[pb.IDMapping], gids: list[pb.IDMapping], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        sandbox_config(_config_with_userns(mode, uids, gids))


def test_status_echoes_the_pod_s_user_namespace(handlers: SandboxHandlers) -> None:
    """linux.namespaces.options carries userns_options as the kubelet sent them, as containerd and cri-o
    answer: POD with the mappings, or NODE (the host's user namespace, also when none was sent)."""
    ctx: Any = Context()
    mapping = _kubelet_mapping(host_id=131072)
    request = pb.RunPodSandboxRequest(config=_config_with_userns(pb.POD, [mapping], [mapping]))
    sid = handlers.RunPodSandbox(request, ctx).pod_sandbox_id
    options = handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid), ctx).status
    assert options.linux.namespaces.options.userns_options == pb.UserNamespace(
        mode=pb.POD, uids=[mapping], gids=[mapping]
    )
    plain = handlers.RunPodSandbox(pb.RunPodSandboxRequest(config=_config("plain")), ctx).pod_sandbox_id
    status = handlers.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=plain), ctx).status
    assert status.linux.namespaces.options.userns_options == pb.UserNamespace(mode=pb.NODE)


class _ContainerStatuses:
    """The CriStatusSource of the wired daemon, reduced to a table of answers per pod."""

    def __init__(self) -> None:
        self.by_pod: dict[str, list[pb.ContainerStatus]] = {}

    def pod_sandbox_status(self, pod_id: str) -> pb.PodSandboxStatus:
        raise AssertionError("PodSandboxStatus builds the pod's status itself")

    def container_statuses(self, pod_id: str) -> list[pb.ContainerStatus]:
        return self.by_pod.get(pod_id, [])


def test_status_carries_the_pod_s_containers_and_the_time_they_were_gathered() -> None:
    """What the kubelet's evented PLEG caches: without `timestamp` it would keep its first cached status of
    the pod for good (cri-o answers both with pod events on; pycrio always serves GetContainerEvents)."""
    ctx: Any = Context()
    statuses, clock = _ContainerStatuses(), FakeClock()
    pods = _pods()
    wired = SandboxHandlers(pods, statuses=statuses, clock=clock)
    sid = wired.RunPodSandbox(pb.RunPodSandboxRequest(config=_config()), ctx).pod_sandbox_id
    statuses.by_pod[sid] = [pb.ContainerStatus(id="c1", state=pb.CONTAINER_RUNNING)]
    clock.advance(5)
    response = wired.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid), ctx)
    assert response.timestamp == clock.now_ns() and response.timestamp > 0
    assert [(c.id, c.state) for c in response.containers_statuses] == [("c1", pb.CONTAINER_RUNNING)]
    bare = SandboxHandlers(pods).PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sid), ctx)
    assert (bare.timestamp, list(bare.containers_statuses)) == (0, [])

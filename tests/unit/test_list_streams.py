"""StreamPodSandboxes and StreamContainers (KEP-5825): the List answers, cut into messages of at most
STREAM_CHUNK items, each item exactly once, no message at all when nothing matches; CheckpointContainer's
clear refusal; and the wired RuntimeService serving all of them through the event wrappers."""

import tempfile
from pathlib import Path
from typing import Any

import grpc
import pytest
from dependency_injector import providers

from adapters.cri.containers import ContainerHandlers
from adapters.cri.errors import status_code_for, status_message_for
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.sandboxes import SandboxHandlers
from adapters.cri.stats import STREAM_CHUNK
from app.config import load
from app.container import make_container
from domain.checkpoints import CHECKPOINT_NOT_IMPLEMENTED
from domain.errors import NotSupported
from domain.sandboxes import SandboxService, SandboxSettings
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.pod_containers import FakePodContainers
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.state_store import InMemoryStateStore
from tests.unit.containers.test_container_service import World, config, world  # noqa: F401

CTX: Any = None


class Context:
    def is_active(self) -> bool:
        return True

    def time_remaining(self) -> float | None:
        return None


@pytest.fixture
def sandbox_handlers() -> SandboxHandlers:
    service = SandboxService(
        InMemoryStateStore(),
        FakeNetwork(),
        FakeNamespaces(),
        FakeInfraProcesses(),
        FakePodFiles(),
        FakeCgroups(),
        FakePodContainers(),
        SandboxSettings(),
        FakeHugePages(),
    )
    return SandboxHandlers(service)


def _run_pods(handlers: SandboxHandlers, count: int, labels: dict[str, str]) -> list[str]:
    ids = []
    for n in range(count):
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=f"p{n}", uid=f"u{n}", namespace="ns"),
            labels={**labels, "n": str(n)},
            linux=pb.LinuxPodSandboxConfig(
                security_context=pb.LinuxSandboxSecurityContext(
                    namespace_options=pb.NamespaceOption(network=pb.NODE)
                )
            ),
        )
        request = pb.RunPodSandboxRequest(config=config)
        ids.append(handlers.RunPodSandbox(request, Context()).pod_sandbox_id)
    return ids


def _pod_messages(handlers: SandboxHandlers, request: pb.StreamPodSandboxesRequest) -> list[Any]:
    """The stream's messages as the client decodes them (the handler yields their kept bytes)."""
    return [
        pb.StreamPodSandboxesResponse.FromString(m.data) for m in handlers.StreamPodSandboxes(request, CTX)
    ]


def _container_messages(handlers: ContainerHandlers, request: pb.StreamContainersRequest) -> list[Any]:
    return [pb.StreamContainersResponse.FromString(m.data) for m in handlers.StreamContainers(request, CTX)]


def test_stream_pod_sandboxes_chunks_the_list_answer(sandbox_handlers: SandboxHandlers) -> None:
    ids = _run_pods(sandbox_handlers, STREAM_CHUNK + 3, {"group": "a"})
    listed = pb.ListPodSandboxResponse.FromString(
        sandbox_handlers.ListPodSandbox(pb.ListPodSandboxRequest(), CTX).data
    ).items
    messages = _pod_messages(sandbox_handlers, pb.StreamPodSandboxesRequest())
    assert [len(m.pod_sandboxes) for m in messages] == [STREAM_CHUNK, 3]
    streamed = [p for m in messages for p in m.pod_sandboxes]
    assert streamed == list(listed)
    assert sorted(p.id for p in streamed) == sorted(ids)  # each pod once


def test_stream_pod_sandboxes_applies_the_list_filters(sandbox_handlers: SandboxHandlers) -> None:
    a = _run_pods(sandbox_handlers, 2, {"group": "a"})
    sandbox_handlers.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=a[1]), CTX)

    def streamed(**fields: Any) -> list[str]:
        request = pb.StreamPodSandboxesRequest(filter=pb.PodSandboxFilter(**fields))
        found = [p.id for m in _pod_messages(sandbox_handlers, request) for p in m.pod_sandboxes]
        answer = sandbox_handlers.ListPodSandbox(
            pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(**fields)), CTX
        )
        listed = pb.ListPodSandboxResponse.FromString(answer.data).items
        assert found == [p.id for p in listed]
        return found

    assert streamed(id=a[0][:10]) == [a[0]]
    assert streamed(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY)) == [a[0]]
    assert streamed(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY)) == [a[1]]
    assert streamed(label_selector={"n": "1"}) == [a[1]]
    assert streamed(label_selector={"group": "b"}) == []


def test_nothing_to_stream_sends_no_message(sandbox_handlers: SandboxHandlers) -> None:
    assert list(sandbox_handlers.StreamPodSandboxes(pb.StreamPodSandboxesRequest(), CTX)) == []


def test_stream_containers_chunks_and_filters(world: World) -> None:  # noqa: F811
    handlers = ContainerHandlers(world.service)
    ids = [world.service.create("sb1", config(name=f"c{n}", labels={"n": str(n)})) for n in range(105)]
    world.service.start(ids[7])
    messages = _container_messages(handlers, pb.StreamContainersRequest())
    assert [len(m.containers) for m in messages] == [STREAM_CHUNK, 5]
    streamed = [c for m in messages for c in m.containers]
    answer = handlers.ListContainers(pb.ListContainersRequest(), CTX)
    assert streamed == list(pb.ListContainersResponse.FromString(answer.data).containers)
    assert sorted(c.id for c in streamed) == sorted(ids)

    def found(**fields: Any) -> list[str]:
        request = pb.StreamContainersRequest(filter=pb.ContainerFilter(**fields))
        return [c.id for m in _container_messages(handlers, request) for c in m.containers]

    assert found(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)) == [ids[7]]
    assert found(id=ids[3][:12]) == [ids[3]]
    assert found(label_selector={"n": "42"}) == [ids[42]]
    assert found(pod_sandbox_id="no-such-pod") == []
    assert list(handlers.StreamContainers(pb.StreamContainersRequest(
        filter=pb.ContainerFilter(label_selector={"n": "none"})), CTX)) == []  # fmt: skip


def test_a_stream_answer_is_kept_until_a_pod_changes(sandbox_handlers: SandboxHandlers) -> None:
    ids = _run_pods(sandbox_handlers, 2, {"group": "a"})
    request = pb.StreamPodSandboxesRequest()
    first = list(sandbox_handlers.StreamPodSandboxes(request, CTX))
    assert len(first) == 1
    assert all(a is b for a, b in zip(first, sandbox_handlers.StreamPodSandboxes(request, CTX), strict=True))
    sandbox_handlers.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=ids[1]), CTX)
    states = {p.id: p.state for m in _pod_messages(sandbox_handlers, request) for p in m.pod_sandboxes}
    assert states == {ids[0]: pb.SANDBOX_READY, ids[1]: pb.SANDBOX_NOTREADY}


def test_a_container_stream_shows_an_exit_nobody_asked_about(world: World) -> None:  # noqa: F811
    handlers = ContainerHandlers(world.service)
    cid = world.service.create("sb1", config(name="c", labels={}))
    world.service.start(cid)
    request = pb.StreamContainersRequest()
    assert [c.state for m in _container_messages(handlers, request) for c in m.containers] == [
        pb.CONTAINER_RUNNING
    ]
    world.runtime.kill(cid, 9)
    assert [c.state for m in _container_messages(handlers, request) for c in m.containers] == [
        pb.CONTAINER_EXITED
    ]


def test_checkpoint_answers_cri_o_s_refusal_before_any_lookup(world: World) -> None:  # noqa: F811
    handlers = ContainerHandlers(world.service)
    for container_id in ("", "no-such-container", world.service.create("sb1", config())):
        with pytest.raises(NotSupported) as raised:
            handlers.CheckpointContainer(
                pb.CheckpointContainerRequest(container_id=container_id, location="/tmp/cp.tar"), CTX
            )
        assert status_code_for(raised.value) == grpc.StatusCode.UNIMPLEMENTED
        assert status_message_for(raised.value) == CHECKPOINT_NOT_IMPLEMENTED


def test_the_wired_services_serve_every_rpc_the_new_ones_through_the_wrappers() -> None:
    """No RPC of cri-api's RuntimeService or ImageService falls back to the generated UNIMPLEMENTED stub, and
    the new ones are reached through the sandbox and container event wrappers of app/container.py."""
    from adapters.cri.generated import api_pb2

    with tempfile.TemporaryDirectory() as root:
        container = make_container(load(None, overrides=[f'runtime.root="{Path(root)}"']))
        container.network.override(providers.Object(FakeNetwork()))
        container.state_store.override(providers.Object(InMemoryStateStore()))
        runtime: Any = container.runtime_servicer()
        servers = {"RuntimeService": runtime, "ImageService": container.image_servicer()}
        for service, servicer in servers.items():
            methods = api_pb2.DESCRIPTOR.services_by_name[service].methods
            assert [m.name for m in methods if m.name not in vars(servicer)] == [], service
        assert runtime.StreamPodSandboxes.__self__ is container.sandbox_handlers()
        assert runtime.UpdatePodSandboxResources.__self__ is container.sandbox_handlers()
        assert runtime.StreamContainers.__self__ is container.container_handlers()
        assert runtime.CheckpointContainer.__self__ is container.container_handlers()
        assert list(runtime.StreamPodSandboxes(pb.StreamPodSandboxesRequest(), CTX)) == []

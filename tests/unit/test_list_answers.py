"""ListPodSandbox and ListContainers answer from kept bytes (adapters/cri/list_answers.py), and must still
answer exactly as a fresh build would after every change: each test primes the kept answers for several
filters, makes one change, checks that a fresh build shows it, then that the kept answers do too. A change
that does not bump its service's list version fails here."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from adapters.cri.containers import ContainerHandlers
from adapters.cri.generated import api_pb2 as pb
from adapters.cri.list_answers import EncodedResponse, ListAnswers, pass_encoded
from adapters.cri.sandboxes import SandboxHandlers
from adapters.cri.server import CriServer
from adapters.cri.services import image_service, runtime_service
from domain.errors import DeadlineExceeded, Internal, InvalidArgument, PycrioError
from domain.sandboxes import SandboxService, SandboxSettings
from tests.cri_client import connect
from tests.fakes.cgroups import FakeCgroups
from tests.fakes.hugepages import FakeHugePages
from tests.fakes.infra import FakeInfraProcesses
from tests.fakes.namespaces import FakeNamespaces
from tests.fakes.network import FakeNetwork
from tests.fakes.pod_containers import FakePodContainers
from tests.fakes.pod_files import FakePodFiles
from tests.fakes.state_store import InMemoryStateStore
from tests.unit.containers.test_container_service import World, config, make_service, world  # noqa: F401
from tests.unit.test_list_streams import Context

CTX: Any = None


Answers = list[list[tuple[str, int]]]


def check_kept_answers(
    kept: Callable[[], Answers], fresh: Callable[[], Answers], change: Callable[[], object]
) -> None:
    """Prime the kept answers, make the change, and check that they show it as a fresh build does."""
    before = kept()
    assert before == fresh()
    change()
    after = fresh()
    assert after != before, "the change should show in a list"
    assert kept() == after


# ---- containers ---------------------------------------------------------------------------------------

_CONTAINER_FILTERS = [
    pb.ContainerFilter(),
    pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_CREATED)),
    pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING)),
    pb.ContainerFilter(state=pb.ContainerStateValue(state=pb.CONTAINER_EXITED)),
    pb.ContainerFilter(pod_sandbox_id="sb1"),
    pb.ContainerFilter(label_selector={"group": "g"}),
]

_NO_SUCH_STATE = pb.ContainerStateValue(state=9)  # type: ignore[arg-type]


class ContainerLists:
    def __init__(self, world: World) -> None:  # noqa: F811
        self._world = world
        self.handlers = ContainerHandlers(world.service)

    def kept(self) -> Answers:
        return [self._answer(self.handlers, wanted) for wanted in _CONTAINER_FILTERS]

    def fresh(self) -> Answers:
        return [self._answer(ContainerHandlers(self._world.service), wanted) for wanted in _CONTAINER_FILTERS]

    @staticmethod
    def _answer(handlers: ContainerHandlers, wanted: pb.ContainerFilter) -> list[tuple[str, int]]:
        encoded = handlers.ListContainers(pb.ListContainersRequest(filter=wanted), CTX)
        return [(c.id, c.state) for c in pb.ListContainersResponse.FromString(encoded.data).containers]

    def check(self, change: Callable[[], object]) -> None:
        check_kept_answers(self.kept, self.fresh, change)


@pytest.fixture
def lists(world: World) -> ContainerLists:  # noqa: F811
    return ContainerLists(world)


def _labelled(name: str) -> Any:
    return config(name=name, labels={"group": "g"})


def test_a_created_container_is_listed(world: World, lists: ContainerLists) -> None:  # noqa: F811
    world.service.create("sb1", _labelled("a"))
    lists.check(lambda: world.service.create("sb1", _labelled("b")))


def test_a_started_container_is_listed_running(world: World, lists: ContainerLists) -> None:  # noqa: F811
    cid = world.service.create("sb1", _labelled("a"))
    lists.check(lambda: world.service.start(cid))


def test_a_failed_start_is_listed_exited(world: World, lists: ContainerLists) -> None:  # noqa: F811
    cid = world.service.create("sb1", _labelled("a"))
    world.runtime.machine.containers.pop(cid)  # the runtime lost it: start fails

    def failed_start() -> None:
        with pytest.raises(PycrioError):
            world.service.start(cid)

    lists.check(failed_start)


def test_an_exit_nobody_asked_about_is_listed_at_once(world: World, lists: ContainerLists) -> None:  # noqa: F811
    """The monitor records the exit; no service call happens before the next list."""
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)
    lists.check(lambda: world.runtime.kill(cid, 9))
    assert (cid, pb.CONTAINER_EXITED) in lists.kept()[0]


def test_an_exit_the_watcher_noticed_first_is_listed(world: World, lists: ContainerLists) -> None:  # noqa: F811
    """The exit watcher learns an exit through status() (app/links/exits.py) before any list does."""
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)

    def exit_then_status() -> None:
        world.runtime.kill(cid, 9)
        assert world.service.status(cid).state.name == "EXITED"

    lists.check(exit_then_status)


def test_a_container_lost_with_its_monitor_is_listed_exited(world: World, lists: ContainerLists) -> None:  # noqa: F811
    """conmon died, then the process: the monitor watch's look (app/links/monitor_exits.py) records it."""
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)
    world.monitor.kill_monitor(cid)
    assert world.service.look_at_monitors() == [cid]  # runs on unmonitored: nothing a list shows changed

    def process_ends_then_look() -> None:
        world.runtime.kill(cid, 9)
        world.service.look_at_monitors()

    lists.check(process_ends_then_look)
    assert (cid, pb.CONTAINER_EXITED) in lists.kept()[0]


def test_a_stopped_container_is_listed_exited(world: World, lists: ContainerLists) -> None:  # noqa: F811
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)
    lists.check(lambda: world.service.stop(cid, 0))


def test_a_removed_container_is_not_listed(world: World, lists: ContainerLists) -> None:  # noqa: F811
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)
    world.service.stop(cid, 0)
    lists.check(lambda: world.service.remove(cid))


def test_containers_restored_after_a_list_are_listed(world: World) -> None:  # noqa: F811
    running = world.service.create("sb1", _labelled("a"))
    world.service.start(running)
    world.service.create("sb1", _labelled("b"))
    world.service = make_service(world)  # a new daemon's service, listed before its containers are loaded
    ContainerLists(world).check(world.service.restore)


def test_a_failed_create_is_never_listed(world: World, lists: ContainerLists) -> None:  # noqa: F811
    world.service.create("sb1", _labelled("a"))
    before = lists.kept()
    world.monitor.create_delay_exceeded = True
    with pytest.raises(DeadlineExceeded):
        world.service.create("sb1", _labelled("b"))
    assert lists.kept() == before == lists.fresh()


def test_a_bad_state_filter_is_refused_every_time(world: World) -> None:  # noqa: F811
    handlers = ContainerHandlers(world.service)
    request = pb.ListContainersRequest(filter=pb.ContainerFilter(state=_NO_SUCH_STATE))
    for _ in range(2):
        with pytest.raises(InvalidArgument, match=r"filter\.state"):
            handlers.ListContainers(request, CTX)


# ---- pods ---------------------------------------------------------------------------------------------

_POD_FILTERS = [
    pb.PodSandboxFilter(),
    pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY)),
    pb.PodSandboxFilter(state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY)),
    pb.PodSandboxFilter(label_selector={"group": "g"}),
]


class PodWorld:
    def __init__(self) -> None:
        self.infra = FakeInfraProcesses()
        self.service = SandboxService(
            InMemoryStateStore(),
            FakeNetwork(),
            FakeNamespaces(),
            self.infra,
            FakePodFiles(),
            FakeCgroups(),
            FakePodContainers(),
            SandboxSettings(),
            FakeHugePages(),
        )
        self.handlers = SandboxHandlers(self.service)
        self._count = 0

    def run(self) -> str:
        self._count += 1
        request = pb.RunPodSandboxRequest(
            config=pb.PodSandboxConfig(
                metadata=pb.PodSandboxMetadata(name=f"p{self._count}", uid=f"u{self._count}", namespace="ns"),
                labels={"group": "g"},
            )
        )
        return str(self.handlers.RunPodSandbox(request, Context()).pod_sandbox_id)

    def kept(self) -> Answers:
        return [self._answer(self.handlers, wanted) for wanted in _POD_FILTERS]

    def fresh(self) -> Answers:
        return [self._answer(SandboxHandlers(self.service), wanted) for wanted in _POD_FILTERS]

    @staticmethod
    def _answer(handlers: SandboxHandlers, wanted: pb.PodSandboxFilter) -> list[tuple[str, int]]:
        encoded = handlers.ListPodSandbox(pb.ListPodSandboxRequest(filter=wanted), CTX)
        return [(p.id, p.state) for p in pb.ListPodSandboxResponse.FromString(encoded.data).items]

    def check(self, change: Callable[[], object]) -> None:
        check_kept_answers(self.kept, self.fresh, change)


@pytest.fixture
def pods() -> PodWorld:
    return PodWorld()


def test_a_new_pod_is_listed(pods: PodWorld) -> None:
    pods.run()
    pods.check(pods.run)


def test_a_stopped_pod_is_listed_notready(pods: PodWorld) -> None:
    pod = pods.run()
    pods.run()
    pods.check(lambda: pods.service.stop(pod))


def test_a_removed_pod_is_not_listed(pods: PodWorld) -> None:
    pod = pods.run()
    pods.run()
    pods.service.stop(pod)  # then removing changes nothing but the pod's presence
    pods.check(lambda: pods.service.remove(pod))


def test_a_pod_whose_infra_died_is_listed_notready_at_once(pods: PodWorld) -> None:
    """Nothing but the list itself looks at the infra process before the next answer."""
    pod = pods.run()
    pods.run()
    infra = pods.service.status(pod).infra
    assert infra is not None
    pods.check(lambda: pods.infra.kill(infra))
    assert (pod, pb.SANDBOX_NOTREADY) in pods.kept()[0]


def test_the_infra_of_a_pod_run_after_a_list_is_watched_too(pods: PodWorld) -> None:
    """The infra processes a list looks at are kept between lists: a pod run since must join them."""
    pods.run()
    pods.kept()
    pod = pods.run()
    pods.kept()
    infra = pods.service.status(pod).infra
    assert infra is not None
    pods.infra.kill(infra)
    assert (pod, pb.SANDBOX_NOTREADY) in pods.kept()[0]  # the list looks first, before any fresh build
    assert pods.kept() == pods.fresh()


def test_an_infra_death_seen_by_status_first_is_listed(pods: PodWorld) -> None:
    pod = pods.run()
    infra = pods.service.status(pod).infra
    assert infra is not None

    def die_then_status() -> None:
        pods.infra.kill(infra)
        assert pods.service.status(pod).state.name == "NOTREADY"

    pods.check(die_then_status)


def test_a_pod_that_failed_to_start_is_never_listed(pods: PodWorld) -> None:
    pods.run()
    before = pods.kept()
    pods.infra.fail_start = True
    with pytest.raises(Internal):
        pods.run()
    assert pods.kept() == before == pods.fresh()


# ---- the kept answers and the server ------------------------------------------------------------------


def test_an_answer_is_kept_per_filter_and_version() -> None:
    answers = ListAnswers()
    builds: list[str] = []

    def build(text: str) -> Callable[[], pb.VersionResponse]:
        return lambda: builds.append(text) or pb.VersionResponse(version=text)  # type: ignore[func-returns-value]

    first = answers.answer(b"a", 1, build("one"))
    assert answers.answer(b"a", 1, build("ignored")) is first
    assert answers.answer(b"b", 1, build("other")).data != first.data
    assert pb.VersionResponse.FromString(answers.answer(b"a", 2, build("two")).data).version == "two"
    assert builds == ["one", "other", "two"]


def test_kept_answers_are_bounded_in_count_and_bytes() -> None:
    answers = ListAnswers(max_kept=3, max_bytes=100)
    for key in range(10):
        answers.answer(str(key).encode(), 1, lambda: pb.VersionResponse(version="x" * 30))
        assert len(answers._kept) <= 3 and answers._bytes <= 100


def test_encoded_answers_pass_the_serializer_unchanged() -> None:
    serialize = pass_encoded(pb.VersionResponse.SerializeToString)
    assert serialize is not None
    assert serialize(EncodedResponse(b"\x0a\x01x")) == b"\x0a\x01x"
    assert serialize(pb.VersionResponse(version="x")) == b"\x0a\x01x"


@pytest.fixture
def served(world: World, tmp_path: Path) -> Iterator[Any]:  # noqa: F811
    server = CriServer(
        tmp_path / "cri.sock",
        0o660,
        runtime_service([ContainerHandlers(world.service)]),
        image_service([]),
        4,
    )
    server.start()
    client = connect(tmp_path / "cri.sock")
    yield client
    client.close()
    server.stop(1)


def test_the_server_sends_kept_answers_and_the_next_list_shows_an_exit(
    world: World,  # noqa: F811
    served: Any,
) -> None:
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)
    listed = served.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert [(c.id, c.state, c.labels["group"]) for c in listed] == [(cid, pb.CONTAINER_RUNNING, "g")]
    world.runtime.kill(cid, 9)
    listed = served.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert [(c.id, c.state) for c in listed] == [(cid, pb.CONTAINER_EXITED)]
    with pytest.raises(grpc.RpcError) as refused:
        served.runtime.ListContainers(
            pb.ListContainersRequest(filter=pb.ContainerFilter(state=_NO_SUCH_STATE))
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_server_streams_kept_answers_as_the_list_answers(
    world: World,  # noqa: F811
    served: Any,
) -> None:
    cid = world.service.create("sb1", _labelled("a"))
    world.service.start(cid)

    def streamed() -> list[tuple[str, int]]:
        messages = served.runtime.StreamContainers(pb.StreamContainersRequest())
        return [(c.id, c.state) for m in messages for c in m.containers]

    listed = served.runtime.ListContainers(pb.ListContainersRequest()).containers
    assert streamed() == streamed() == [(c.id, c.state) for c in listed] == [(cid, pb.CONTAINER_RUNNING)]
    world.runtime.kill(cid, 9)
    assert streamed() == [(cid, pb.CONTAINER_EXITED)]
